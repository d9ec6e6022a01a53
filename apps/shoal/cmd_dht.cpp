// `shoal dht`: run a DHT node, look up peers, and put or get BEP 44 items.
#include <fmt/core.h>
#include <sodium.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>

#include "commands.hpp"
#include "console.hpp"
#include "core/bencode.hpp"
#include "core/text.hpp"
#include "dht/node.hpp"
#include "live_display.hpp"

namespace shoal::cli {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct dht_args {
  int port = 0;
  int node_port = 6881;
  std::string bind = "0.0.0.0";
  std::vector<std::string> bootstrap;
  std::string state;
  bool local = false;
  bool json = false;
  bool verbose = false;
  bool read_only = false;
  bool no_ipv6 = false;
  double wait = 5;  // seconds to wait for the routing table before a lookup
  // node
  std::size_t max_torrents = 2000, max_peers = 500, max_items = 700;
  double rate = 20;
  long ban_seconds = 300;
  // get-peers
  std::string info_hash;
  int announce_port = -1;
  bool seed = false;
  // put / get
  std::string value, bencoded, key_seed, salt, public_key, target;
  long long seq = -1;
};

std::shared_ptr<dht::node> make_node(asio::io_context& io, const dht_args& a) {
  dht::settings s;
  s.listen_address = a.bind;
  s.port = static_cast<std::uint16_t>(a.port);
  s.bootstrap = a.bootstrap;
  s.local = a.local || env_local();
  s.state_file = a.state;
  s.read_only = a.read_only;
  s.ipv6 = !a.no_ipv6;
  s.limits.max_torrents = a.max_torrents;
  s.limits.max_peers_per_torrent = a.max_peers;
  s.limits.max_items = a.max_items;
  s.queries_per_second = a.rate;
  s.burst = a.rate * 3;
  s.ban_time = std::chrono::seconds(a.ban_seconds);
  if (a.verbose) s.log = [](const std::string& l) { fmt::print(stderr, "{}\n", printable(l)); };
  auto n = std::make_shared<dht::node>(io, s);
  if (auto ec = n->start()) {
    throw std::runtime_error("cannot listen on UDP port " + std::to_string(a.port) + ": " + ec.message() +
                             " (choose another with --port, or --port 0 for any)");
  }
  return n;
}

boost::json::object stats_json(const dht::node& n) {
  const auto s = n.stats();
  boost::json::object o;
  o["event"] = "stats";
  o["nodes"] = s.nodes;
  o["nodes6"] = s.nodes6;
  o["buckets"] = s.buckets;
  o["torrents"] = s.torrents;
  o["peers"] = s.peers;
  o["items"] = s.items;
  o["queries_in"] = s.queries_in;
  o["replies_out"] = s.replies_out;
  o["errors_out"] = s.errors_out;
  o["dropped_rate"] = s.dropped_rate;
  o["dropped_malformed"] = s.dropped_malformed;
  o["banned_sources"] = s.banned_sources;
  o["queries_out"] = s.queries_out;
  o["timeouts"] = s.timeouts;
  o["trimmed_replies"] = s.trimmed_replies;
  return o;
}

std::optional<dht::node_id> parse_hash(const std::string& hex) {
  auto b = from_hex(hex);
  if (!b || b->size() != 20) return std::nullopt;
  dht::node_id id;
  std::copy(b->begin(), b->end(), id.begin());
  return id;
}

int run_node(const dht_args& a) {
  asio::io_context io;
  auto n = make_node(io, a);
  if (a.json) {
    boost::json::object o;
    o["event"] = "listening";
    o["port"] = n->port();
    o["id"] = to_hex(as_view(n->id()));
    fmt::print("{}\n", plain_json(o));
    std::fflush(stdout);
  } else {
    fmt::print(stderr, "DHT node {} listening on UDP port {}; Ctrl-C to stop\n", to_hex(as_view(n->id())), n->port());
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    n->stop();
    io.stop();
  });
  asio::steady_timer tick(io);
  std::function<void()> report = [&] {
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      if (a.json) {
        fmt::print("{}\n", plain_json(stats_json(*n)));
        std::fflush(stdout);
      }
      report();
    });
  };
  report();
  io.run();
  return exit_ok;
}

// Runs one coroutine against a fresh node and returns its exit code.
int with_node(const dht_args& a, std::function<asio::awaitable<int>(std::shared_ptr<dht::node>)> body) {
  asio::io_context io;
  auto n = make_node(io, a);
  int code = exit_error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<int> {
        const auto wait = std::chrono::milliseconds(static_cast<long>(a.wait * 1000));
        const bool ready = co_await n->wait_ready(wait);
        if (!ready) {
          warn("no DHT node answered within " + fmt::format("{:g}", a.wait) +
               " s (check --dht-bootstrap, or raise --wait)");
        }
        auto r = co_await body(n);
        co_return r;
      },
      [&](std::exception_ptr e, int r) {
        code = e ? exit_error : r;
        n->stop();
        io.stop();
      });
  io.run();
  return code;
}

int run_get_peers(const dht_args& a) {
  auto h = parse_hash(a.info_hash);
  if (!h) return usage_error("dht get-peers", "'" + a.info_hash + "' is not a 40-digit hex info-hash");
  return with_node(a, [&](std::shared_ptr<dht::node> n) -> asio::awaitable<int> {
    dht::node::lookup_options opt;
    if (a.announce_port >= 0) opt.announce_port = static_cast<std::uint16_t>(a.announce_port);
    opt.implied_port = a.announce_port == 0;
    opt.seed = a.seed;
    auto peers = std::make_shared<std::vector<tcp::endpoint>>();
    const dht::node_id target = *h;
    // Named, not a temporary: GCC 12 mishandles temporaries around co_await.
    std::function<void(const std::vector<tcp::endpoint>&)> on_peers = [peers](const std::vector<tcp::endpoint>& got) {
      for (const auto& ep : got) {
        if (std::find(peers->begin(), peers->end(), ep) == peers->end()) peers->push_back(ep);
      }
    };
    auto found = co_await n->get_peers(target, opt, on_peers);
    (void)found;
    if (opt.announce_port) {
      // Let the announces go out and be answered.
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_after(std::chrono::milliseconds(2500));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    boost::json::array arr;
    for (const auto& ep : *peers) {
      const std::string s = (ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string()) +
                            ":" + std::to_string(ep.port());
      if (a.json) {
        arr.emplace_back(s);
      } else {
        fmt::print("{}\n", s);
      }
    }
    if (a.json) {
      boost::json::object o;
      o["event"] = "peers";
      o["peers"] = arr;
      fmt::print("{}\n", plain_json(o));
    }
    co_return peers->empty() ? 4 : exit_ok;
  });
}

std::string value_bytes(const dht_args& a) {
  if (!a.bencoded.empty()) return a.bencoded;
  return bencode::encode(a.value);
}

int run_put(const dht_args& a) {
  if (a.value.empty() && a.bencoded.empty()) return usage_error("dht put", "give a VALUE or --bencoded");
  dht::put_item_params p;
  p.v = value_bytes(a);
  if (!bencode::decode(p.v)) return usage_error("dht put", "--bencoded: not valid bencoding");
  if (!a.key_seed.empty()) {
    auto seed = from_hex(a.key_seed);
    if (!seed || seed->size() != 32) return usage_error("dht put", "--key-seed must be 64 hex digits (32 bytes)");
    p.secret_seed = *seed;
    p.salt = a.salt;
    if (a.seq >= 0) p.seq = a.seq;
  } else if (!a.salt.empty() || a.seq >= 0) {
    return usage_error("dht put", "--salt and --seq need --key-seed (they belong to mutable items)");
  }
  return with_node(a, [&](std::shared_ptr<dht::node> n) -> asio::awaitable<int> {
    auto r = co_await n->put_item(p);
    if (!r) {
      fail("put: " + r.err().message());
      co_return exit_error;
    }
    std::string pk;
    if (!p.secret_seed.empty()) {
      std::string sk(64, '\0');
      pk.resize(32);
      crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pk.data()), reinterpret_cast<unsigned char*>(sk.data()),
                               reinterpret_cast<const unsigned char*>(p.secret_seed.data()));
    }
    if (a.json) {
      boost::json::object o;
      o["event"] = "put";
      o["target"] = to_hex(as_view(*r));
      if (!pk.empty()) o["public_key"] = to_hex(pk);
      fmt::print("{}\n", plain_json(o));
    } else {
      fmt::print("{}\n", to_hex(as_view(*r)));
    }
    co_return exit_ok;
  });
}

int run_get(const dht_args& a) {
  dht::node_id target{};
  std::string salt;
  if (!a.public_key.empty()) {
    auto pk = from_hex(a.public_key);
    if (!pk || pk->size() != 32) return usage_error("dht get", "--public-key must be 64 hex digits");
    target = dht::mutable_target(*pk, a.salt);
    salt = a.salt;
  } else {
    auto h = parse_hash(a.target);
    if (!h) {
      return usage_error("dht get",
                         "give the item's 40-digit hex TARGET, or --public-key (and --salt) for a mutable item");
    }
    target = *h;
  }
  return with_node(a, [&](std::shared_ptr<dht::node> n) -> asio::awaitable<int> {
    auto r = co_await n->get_item(target, salt);
    if (!r) {
      fail("get: " + r.err().message());
      co_return 4;
    }
    auto doc = bencode::decode(r->v);
    const bool is_string = doc && doc->root().is_string();
    if (a.json) {
      boost::json::object o;
      o["event"] = "item";
      o["target"] = to_hex(as_view(target));
      o["v"] = to_hex(r->v);
      if (is_string) o["value"] = repair_utf8(doc->root().as_string());
      if (r->seq) o["seq"] = *r->seq;
      fmt::print("{}\n", plain_json(o));
    } else {
      fmt::print("{}\n", is_string ? printable(doc->root().as_string()) : printable(r->v));
    }
    co_return exit_ok;
  });
}

}  // namespace

runner add_dht(CLI::App& app) {
  auto a = std::make_shared<dht_args>();
  app.require_subcommand(1, 1);
  auto common = [a](CLI::App* s, int& port) {
    s->add_option("--port", port, "UDP port (0: any free port)")->check(CLI::Range(0, 65535));
    s->add_option("--bind", a->bind, "Address to listen on");
    s->add_option("--dht-bootstrap", a->bootstrap, "Join through this node (HOST:PORT; repeatable)")->default_str("");
    s->add_option("--state", a->state, "Keep the node id and routing table in this file between runs");
    s->add_flag("--local", a->local, "Only loopback and private addresses, no public routers (also SHOAL_LOCAL=1)");
    s->add_flag("--json", a->json, "Machine-readable output");
    s->add_flag("-v,--verbose", a->verbose, "Log what the node does");
    s->add_flag("--read-only", a->read_only, "Ask, never answer (BEP 43)");
    s->add_flag("--no-ipv6", a->no_ipv6, "No IPv6 twin node (BEP 32) beside the IPv4 one");
  };
  auto* node = app.add_subcommand("node", "Run a DHT node until stopped (--json prints stats every second)");
  common(node, a->node_port);
  node->add_option("--max-torrents", a->max_torrents, "Info-hashes stored for others")->check(positive());
  node->add_option("--max-peers", a->max_peers, "Peers stored per info-hash")->check(positive());
  node->add_option("--max-items", a->max_items, "BEP 44 items stored")->check(non_negative());
  node->add_option("--rate", a->rate, "Packets per second one source may send before being dropped")->check(positive());
  node->add_option("--ban-time", a->ban_seconds, "Seconds a flooding source is ignored")->check(non_negative());
  auto* gp = app.add_subcommand("get-peers", "Find peers of an info-hash (exit code 4: none found)");
  common(gp, a->port);
  gp->add_option("INFOHASH", a->info_hash, "40 hex digits")->required();
  gp->add_option("--announce", a->announce_port, "Also announce us as a peer on this TCP port (0: implied port)")
      ->check(CLI::Range(0, 65535))
      ->default_str("");
  gp->add_flag("--seed", a->seed, "Announce as a seed (BEP 33)");
  gp->add_option("--wait", a->wait, "Seconds to wait for the first nodes")->check(non_negative());
  auto* put = app.add_subcommand("put", "Store a BEP 44 item; prints its target");
  common(put, a->port);
  put->add_option("VALUE", a->value, "A string to store");
  put->add_option("--bencoded", a->bencoded, "Store this bencoded value instead");
  put->add_option("--key-seed", a->key_seed, "Mutable item: the ed25519 key's 32-byte seed, in hex");
  put->add_option("--salt", a->salt, "Mutable item: salt");
  put->add_option("--seq", a->seq, "Mutable item: sequence number (default: one more than the newest)")
      ->check(non_negative())
      ->default_str("");
  put->add_option("--wait", a->wait, "Seconds to wait for the first nodes")->check(non_negative());
  auto* get = app.add_subcommand("get", "Fetch a BEP 44 item (exit code 4: not found)");
  common(get, a->port);
  get->add_option("TARGET", a->target, "Immutable item: its 40-digit hex target");
  get->add_option("--public-key", a->public_key, "Mutable item: the 32-byte ed25519 public key, in hex");
  get->add_option("--salt", a->salt, "Mutable item: salt");
  get->add_option("--wait", a->wait, "Seconds to wait for the first nodes")->check(non_negative());
  return [a, node, gp, put, get]() -> int {
    if (sodium_init() < 0) return fail("libsodium failed to start");
    if (node->parsed()) {
      a->port = a->node_port;
      return run_node(*a);
    }
    if (gp->parsed()) return run_get_peers(*a);
    if (put->parsed()) return run_put(*a);
    if (get->parsed()) return run_get(*a);
    return exit_usage;
  };
}

}  // namespace shoal::cli
