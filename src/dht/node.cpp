// The DHT node: starting and stopping, the state file, sending and receiving with
// per-source rate limits. Answering queries is in node_answer.cpp, asking them (lookups,
// bootstrap, maintenance, BEP 44) in node_lookup.cpp.
#include "dht/node.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/bencode.hpp"
#include "core/text.hpp"
#include "dht/node_detail.hpp"
#include "storage/resume.hpp"

namespace shoal::dht {

using namespace detail;

// The unit a rate limit or a vote counts: an IPv4 address (a /24 for votes would punish
// NATed neighbours), an IPv6 /64 (one host usually owns a whole /64).
std::string source_prefix(const boost::asio::ip::address& a) {
  if (a.is_v4()) return a.to_string();
  auto b = a.to_v6().to_bytes();
  std::fill(b.begin() + 8, b.end(), 0);
  return boost::asio::ip::address_v6(b).to_string() + "/64";
}

const std::vector<std::string>& default_bootstrap_nodes() {
  static const std::vector<std::string> nodes = {"router.bittorrent.com:6881", "router.utorrent.com:6881",
                                                 "dht.transmissionbt.com:6881", "dht.libtorrent.org:25401"};
  return nodes;
}

bool split_host_port(const std::string& s, std::string& host, std::string& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  port = s.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return port.find_first_not_of("0123456789") == std::string::npos && port.size() <= 5;
}

node::node(asio::io_context& io, settings s)
    : io_(io), s_(std::move(s)), socket_(io), table_(node_id{}), store_(s_.limits) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  node_id id;
  randombytes_buf(id.data(), id.size());
  table_.reset(id);
  for (auto& sec : secrets_) {
    sec.resize(32);
    randombytes_buf(sec.data(), sec.size());
  }
}

node::~node() = default;

std::error_code node::start() {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(s_.listen_address, ec);
  if (ec) return ec;
  udp::endpoint ep(addr, s_.port);
  socket_.open(ep.protocol(), ec);
  if (ec) return ec;
  if (addr.is_v6()) socket_.set_option(boost::asio::ip::v6_only(true), ec);
  socket_.bind(ep, ec);
  if (ec) {
    socket_.close();
    return ec;
  }
  socket_.non_blocking(true, ec);
  port_ = socket_.local_endpoint().port();
  v6_ = addr.is_v6();
  load_state();
  secret_rotated_ = clock::now();
  maintenance_timer_ = std::make_unique<asio::steady_timer>(io_);
  auto self = shared_from_this();
  asio::co_spawn(io_, receive_loop(self), asio::detached);
  asio::co_spawn(io_, bootstrap(self), asio::detached);
  asio::co_spawn(io_, maintenance_loop(self), asio::detached);
  log("dht: listening on UDP port " + std::to_string(port_) + (v6_ ? " (IPv6)" : "") + ", id " +
      to_hex(as_view(table_.self())));
  if (s_.ipv6 && !v6_ && addr.is_unspecified()) {
    settings s6 = s_;
    s6.listen_address = "::";
    s6.port = port_;
    s6.ipv6 = false;
    if (!s6.state_file.empty()) s6.state_file += ".v6";
    auto twin = std::make_shared<node>(io_, s6);
    twin->parent_ = self;
    twin->table_.reset(table_.self());  // BEP 32: one id on both families
    if (auto tec = twin->start(); !tec) {
      twin_ = twin;
    } else {
      log("dht: no IPv6 node (" + tec.message() + ")");
    }
  }
  return {};
}

std::error_code node::start_external(send_fn send, std::uint16_t port, bool v6) {
  if (!send) return std::make_error_code(std::errc::invalid_argument);
  external_send_ = std::move(send);
  port_ = port;
  v6_ = v6;
  load_state();
  secret_rotated_ = clock::now();
  maintenance_timer_ = std::make_unique<asio::steady_timer>(io_);
  auto self = shared_from_this();
  asio::co_spawn(io_, bootstrap(self), asio::detached);
  asio::co_spawn(io_, maintenance_loop(self), asio::detached);
  log("dht: on the shared UDP port " + std::to_string(port_) + (v6_ ? " (IPv6)" : "") + ", id " +
      to_hex(as_view(table_.self())));
  if (s_.ipv6 && !v6_) {
    // BEP 32 on the shared socket too: the twin sends through the same function (which
    // picks the socket by the destination's family) and gets the IPv6 datagrams.
    settings s6 = s_;
    s6.ipv6 = false;
    if (!s6.state_file.empty()) s6.state_file += ".v6";
    auto twin = std::make_shared<node>(io_, s6);
    twin->parent_ = self;
    twin->table_.reset(table_.self());
    if (!twin->start_external(external_send_, port_, true)) twin_ = twin;
  }
  return {};
}

void node::deliver(std::span<const char> datagram, const udp::endpoint& from) {
  if (twin_ && from.address().is_v6() && !v6_) {
    twin_->deliver(datagram, from);
    return;
  }
  if (!is_open() || from.address().is_v6() != v6_) return;
  on_packet(std::string_view(datagram.data(), datagram.size()), from);
}

void node::stop() {
  if (stopped_) return;
  stopped_ = true;
  save_state();
  boost::system::error_code ec;
  socket_.close(ec);
  if (twin_) twin_->stop();
  // The shared socket's send function holds the uTP manager, whose fallback holds this
  // node: dropping it breaks that cycle (nothing is sent once stopped).
  external_send_ = nullptr;
  if (maintenance_timer_) maintenance_timer_->cancel();
  for (auto& [tid, p] : pending_) {
    if (p->timer) p->timer->cancel();
  }
}

node_stats node::stats() const {
  node_stats s = stats_;
  s.nodes = table_.size();
  s.buckets = table_.bucket_count();
  s.torrents = store_.torrent_count();
  s.peers = store_.peer_count();
  s.items = store_.item_count();
  if (twin_) s.nodes6 = twin_->table().size();
  return s;
}

std::shared_ptr<node> node::other_family() const {
  return twin_ ? twin_ : parent_.lock();
}

void node::add_contact(const udp::endpoint& ep) {
  if (ep.address().is_v6() != v6_) {
    if (auto other = other_family()) other->consider({node_id{}, ep});
    return;
  }
  consider({node_id{}, ep});
}

void node::consider(const node_entry& n) {
  if (!is_open() || n.ep.address().is_v6() != v6_ || !allowed_address(n.ep) || table_.find(n.ep)) return;
  if (verify_pings_ >= max_verify_pings || table_.size() >= 160 * bucket_size) return;
  const std::string key = ep_key(n.ep);
  auto [it, fresh] = verifying_.emplace(key, clock::now());
  if (fresh) ping(n.ep);
}

// --- persistence ---------------------------------------------------------------------

void node::load_state() {
  if (s_.state_file.empty()) return;
  std::ifstream in(s_.state_file, std::ios::binary);
  if (!in) return;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  auto doc = bencode::decode(bytes);
  if (!doc || !doc->root().is_dict()) {
    log("dht: ignoring unreadable state file " + s_.state_file.string());
    return;
  }
  auto root = doc->root();
  if (auto id = root.find("id"); id.is_string() && id.as_string().size() == 20 && parent_.expired()) {
    node_id nid;
    std::memcpy(nid.data(), id.as_string().data(), 20);
    table_.reset(nid);
  }
  for (const char* key : {"nodes", "nodes6"}) {
    const bool v6 = key[5] == '6';
    auto n = root.find(key).as_string();
    const std::size_t each = v6 ? 38 : 26;
    for (std::size_t i = 0; i + each <= n.size() && saved_nodes_.size() < 400; i += each) {
      if (auto ep = parse_compact_endpoint(n.substr(i + 20, each - 20)); ep && allowed_address(*ep)) {
        saved_nodes_.push_back(*ep);
      }
    }
  }
}

void node::save_state() {
  if (s_.state_file.empty()) return;
  bencode::dict d;
  d["id"] = std::string(reinterpret_cast<const char*>(table_.self().data()), 20);
  auto nodes = table_.all();
  d["nodes"] = compact_nodes(nodes, false);
  d["nodes6"] = compact_nodes(nodes, true);
  // The job owns everything it touches (not the node): it may run after the node is gone.
  // A failure is reported back on the network thread, where the log callback lives.
  auto job = [file = s_.state_file, bytes = bencode::encode(d), log = s_.log, &io = io_] {
    if (auto wec = write_file_atomically(file, bytes); wec && log) {
      asio::post(io, [log, msg = "dht: could not save state to " + file.string() + ": " + wec.message()] { log(msg); });
    }
  };
  if (s_.run_blocking) {
    s_.run_blocking(std::move(job));
    return;
  }
  if (!writer_) writer_ = std::make_unique<thread_pool>(1);
  writer_->post(std::move(job));
}

// --- sending and receiving -------------------------------------------------------------

void node::send(const std::string& bytes, const udp::endpoint& to) {
  if (external_send_) {
    external_send_(std::span<const char>(bytes.data(), bytes.size()), to);
    return;
  }
  boost::system::error_code ec;
  socket_.send_to(asio::buffer(bytes), to, 0, ec);  // a full socket buffer drops the datagram, as UDP does
}

std::string node::next_tid() {
  // Random, so a node we query cannot guess the ids of our other queries and answer them.
  const auto r = rng_();
  std::string t(4, '\0');
  for (int i = 0; i < 4; ++i)
    t[static_cast<std::size_t>(i)] = static_cast<char>(r >> (8 * i));
  return t;
}

bool node::allowed_address(const udp::endpoint& ep) const {
  if (ep.port() == 0) return false;
  if (s_.local && !is_local_address(ep.address())) return false;
  return true;
}

bool node::allow_source(const udp::endpoint& from) {
  const auto now = clock::now();
  const std::string key = from.address().is_loopback() ? ep_key(from) : source_prefix(from.address());
  auto it = sources_.find(key);
  if (it == sources_.end()) {
    if (sources_.size() >= max_sources) {
      // Full: forget every source that is not banned (a fresh source starts with a full
      // bucket anyway), so newcomers are never refused. Amortised: once per fill.
      std::erase_if(sources_, [&](const auto& kv) { return kv.second.banned_until < now; });
      if (sources_.size() >= max_sources) sources_.clear();
    }
    it = sources_.emplace(key, source_state{s_.burst, now, 0, {}}).first;
  }
  auto& st = it->second;
  if (st.banned_until > now) return false;
  const double elapsed = std::chrono::duration<double>(now - st.last).count();
  st.last = now;
  st.tokens = std::min(s_.burst, st.tokens + elapsed * s_.queries_per_second);
  if (st.tokens >= 1) {
    st.tokens -= 1;
    return true;
  }
  ++stats_.dropped_rate;
  if (++st.strikes >= s_.strikes_to_ban) {
    st.banned_until = now + s_.ban_time;
    st.strikes = 0;
    ++stats_.banned_sources;
    log("dht: banning " + key + " for flooding");
  }
  return false;
}

asio::awaitable<void> node::receive_loop(std::shared_ptr<node> self) {
  std::vector<char> buf(4 * max_packet);
  udp::endpoint from;
  while (socket_.is_open()) {
    auto [ec, n] = co_await socket_.async_receive_from(asio::buffer(buf), from, asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !socket_.is_open()) break;
    if (ec) continue;  // ICMP errors and the like: keep listening
    on_packet(std::string_view(buf.data(), n), from);
  }
  (void)self;
}

void node::on_packet(std::string_view pkt, const udp::endpoint& from) {
  if (!allowed_address(from)) return;
  auto m = decode(pkt);
  // Answers to our own queries pass (matched by random transaction id and address); all
  // else counts against the sender's rate.
  if (m && m->type != msg_type::query) {
    auto it = pending_.find(m->tid);
    if (it == pending_.end() || it->second->to != from) return;  // unsolicited, or from the wrong address
    auto p = it->second;
    pending_.erase(it);
    p->reply = std::move(*m);
    if (p->timer) p->timer->cancel();
    return;
  }
  if (!allow_source(from)) return;
  if (!m) {
    ++stats_.dropped_malformed;
    // A query we can still answer: tell it what was wrong (203), if it carries a transaction id.
    auto doc = bencode::decode(pkt);
    if (doc && doc->root().is_dict() && doc->root().find("y").as_string() == "q") {
      auto t = doc->root().find("t");
      if (t.is_string() && t.as_string().size() <= max_transaction_id) {
        send_error(std::string(t.as_string()), err_protocol, m.err().detail, from, pkt.size());
      }
    }
    return;
  }
  ++stats_.queries_in;
  if (!s_.read_only) on_query(*m, from, pkt.size());
}

}  // namespace shoal::dht
