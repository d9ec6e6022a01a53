// The DHT node asking: single queries with timeouts, iterative lookups, bootstrap, the
// maintenance loop (secret rotation, refreshes, state saves), get_peers and BEP 44
// get/put.
#include "dht/node.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "core/bencode.hpp"
#include "core/text.hpp"
#include "dht/node_detail.hpp"
#include "storage/resume.hpp"

namespace shoal::dht {

using namespace detail;

// --- queries and lookups ---------------------------------------------------------------

asio::awaitable<std::optional<message>> node::query(std::shared_ptr<node> self, udp::endpoint to, message q,
                                                    std::chrono::milliseconds timeout) {
  std::optional<message> none;
  if (!is_open() || !allowed_address(to)) co_return none;
  q.type = msg_type::query;
  q.tid = next_tid();
  while (pending_.count(q.tid))
    q.tid = next_tid();
  q.id = table_.self();
  q.read_only = s_.read_only;
  q.version = s_.version;
  auto other = other_family();
  if (other && (q.meth == method::find_node || q.meth == method::get_peers || q.meth == method::get)) {
    q.want4 = q.want6 = true;  // BEP 32: both families, the twin takes the other one's nodes
  }
  auto p = std::make_shared<pending>();
  p->to = to;
  p->timer = std::make_unique<asio::steady_timer>(io_);
  p->timer->expires_after(timeout);
  pending_[q.tid] = p;
  ++stats_.queries_out;
  send(encode(q), to);
  co_await p->timer->async_wait(asio::as_tuple(asio::use_awaitable));
  if (auto it = pending_.find(q.tid); it != pending_.end() && it->second == p) pending_.erase(it);
  if (!p->reply) {
    ++stats_.timeouts;
    if (p->to.port() != 0) {
      // Unknown ids (bootstrap) have no table entry: failed() finds nothing and does nothing.
      for (const auto& n : table_.all()) {
        if (n.ep == to) table_.failed(n.id, to);
      }
    }
    co_return none;
  }
  message& r = *p->reply;
  if (r.type == msg_type::response && r.id) {
    const auto now = clock::now();
    if (answered_.size() >= max_answered) {
      // Full: forget those not heard from for ten minutes (all of them if none is that old).
      std::erase_if(answered_, [&](const auto& kv) { return now - kv.second > std::chrono::minutes(10); });
      if (answered_.size() >= max_answered) answered_.clear();
    }
    answered_[ep_key(to)] = now;
    if (!r.read_only) {
      auto to_ping = table_.heard_from(*r.id, to, true, node_id_valid_for(*r.id, to.address()), now);
      if (to_ping) ping(to_ping->ep);
    }
    if (r.ip) vote_external_ip(*r.ip, to);
    if (other) {
      for (const auto& n : v6_ ? r.nodes : r.nodes6)
        other->consider(n);
    }
  }
  (void)self;
  co_return std::move(p->reply);
}

void node::ping(const udp::endpoint& ep) {
  if (!is_open()) return;
  ++verify_pings_;
  auto self = shared_from_this();
  asio::co_spawn(
      io_,
      [self, ep]() -> asio::awaitable<void> {
        message q;
        q.meth = method::ping;
        auto r = co_await self->query(self, ep, q, query_timeout);
        (void)r;
        --self->verify_pings_;
      },
      asio::detached);
}

void node::vote_external_ip(const udp::endpoint& ip, const udp::endpoint& from) {
  const auto addr = ip.address();
  if (is_local_address(addr)) return;
  // Only nodes of our routing table vote, one vote per /24 (IPv4) or /64 (IPv6), and an id
  // changes at most once an hour: strangers cannot make us drop our table.
  if (!table_.find(from)) return;
  const auto now = clock::now();
  if (now - votes_started_ > std::chrono::hours(1)) {
    ip_votes_.clear();
    votes_started_ = now;
  }
  const std::string voter = source_prefix(from.address());
  for (auto& [a, vs] : ip_votes_)
    vs.erase(voter);  // a voter's latest word counts
  if (ip_votes_.size() >= 64 && !ip_votes_.count(addr.to_string())) return;
  ip_votes_[addr.to_string()][voter] = true;
  std::size_t total = 0;
  for (const auto& [a, vs] : ip_votes_)
    total += vs.size();
  const std::size_t mine = ip_votes_[addr.to_string()].size();
  if (mine < 5 || mine * 3 < total * 2 || node_id_valid_for(table_.self(), addr)) return;
  if (now - last_id_change_ < std::chrono::hours(1) && last_id_change_ != clock::time_point{}) return;
  // BEP 42: our id must come from our address. Take a new one; the known nodes are pinged
  // back into the new table.
  node_id rnd;
  randombytes_buf(rnd.data(), rnd.size());
  const node_id id = make_node_id(addr, static_cast<std::uint8_t>(rnd[19] & 7), rnd);
  log("dht: external address " + addr.to_string() + ", new node id " + to_hex(as_view(id)));
  auto known = table_.all();
  table_.reset(id);
  ip_votes_.clear();
  last_id_change_ = now;
  for (const auto& n : known)
    consider(n);
}

asio::awaitable<std::vector<node::candidate>> node::lookup(std::shared_ptr<node> self, method m, node_id target,
                                                           reply_fn on_reply, fill_fn fill) {
  auto cands = std::make_shared<std::vector<candidate>>();
  auto add = [cands, target, this](const node_entry& n) {
    if (n.id == table_.self() || !allowed_address(n.ep) || n.ep.address().is_v6() != v6_) return;
    for (const auto& c : *cands) {
      if (c.n.ep == n.ep) return;
    }
    cands->push_back({n, candidate::fresh, {}});
    std::sort(cands->begin(), cands->end(),
              [&](const candidate& a, const candidate& b) { return closer(target, a.n.id, b.n.id); });
    if (cands->size() > max_candidates) cands->pop_back();
  };
  for (const auto& n : table_.closest(target, lookup_width * 2))
    add(n);
  auto wake = std::make_shared<asio::steady_timer>(io_);
  auto in_flight = std::make_shared<std::size_t>(0);
  const auto deadline = clock::now() + lookup_deadline;
  while (is_open() && clock::now() < deadline) {
    // Done when the k closest candidates that did not fail have all answered.
    std::size_t seen = 0;
    bool all_answered = true;
    std::vector<std::size_t> to_ask;
    for (std::size_t i = 0; i < cands->size() && seen < lookup_width; ++i) {
      auto& c = (*cands)[i];
      if (c.st == candidate::failed) continue;
      ++seen;
      if (c.st != candidate::answered) all_answered = false;
      if (c.st == candidate::fresh && *in_flight + to_ask.size() < alpha) to_ask.push_back(i);
    }
    if (all_answered && *in_flight == 0) break;
    for (auto i : to_ask) {
      auto& c = (*cands)[i];
      c.st = candidate::asked;
      ++*in_flight;
      message q;
      q.meth = m;
      fill(q);
      const udp::endpoint ep = c.n.ep;
      asio::co_spawn(
          io_,
          [self, q, ep, cands, add, wake, in_flight, on_reply]() mutable -> asio::awaitable<void> {
            auto r = co_await self->query(self, ep, q, query_timeout);
            --*in_flight;
            for (auto& c : *cands) {
              if (c.n.ep != ep) continue;
              if (r && r->type == msg_type::response && r->id) {
                c.st = candidate::answered;
                c.n.id = *r->id;
                c.token = r->token;
                on_reply(c, *r);
              } else {
                c.st = candidate::failed;
              }
              break;
            }
            if (r && r->type == msg_type::response) {
              for (const auto& n : r->nodes)
                add(n);
              for (const auto& n : r->nodes6)
                add(n);
            }
            wake->cancel();
          },
          asio::detached);
    }
    if (*in_flight == 0 && to_ask.empty()) break;  // nothing left to ask
    wake->expires_after(std::chrono::seconds(5));
    co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::vector<candidate> out;
  for (const auto& c : *cands) {
    if (c.st == candidate::answered && out.size() < lookup_width) out.push_back(c);
  }
  co_return out;
}

asio::awaitable<void> node::bootstrap(std::shared_ptr<node> self) {
  std::vector<std::string> hosts = s_.bootstrap;
  if (hosts.empty() && !s_.local) hosts = default_bootstrap_nodes();
  std::vector<udp::endpoint> eps = saved_nodes_;
  udp::resolver resolver(io_);
  for (const auto& h : hosts) {
    std::string host, port;
    if (!split_host_port(h, host, port)) {
      log("dht: bootstrap node '" + h + "' is not HOST:PORT");
      continue;
    }
    if (s_.local) {
      // --local: literals and localhost only, and never a name lookup.
      const auto addrs = local_host_addresses(host);
      if (addrs.empty()) {
        log("dht: bootstrap node " + h + ": skipped under --local: not a loopback or private address or localhost");
        continue;
      }
      std::uint16_t pn = 0;
      try {
        pn = static_cast<std::uint16_t>(std::stoul(port));
      } catch (const std::exception&) {
        log("dht: bootstrap node '" + h + "' has a bad port");
        continue;
      }
      for (const auto& addr : addrs) {
        if (addr.is_v6() == v6_) eps.emplace_back(addr, pn);
      }
      continue;
    }
    auto [ec, res] = co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      log("dht: bootstrap node " + h + ": " + ec.message());
      continue;
    }
    for (const auto& r : res) {
      if (r.endpoint().address().is_v6() == v6_) eps.push_back(r.endpoint());
    }
  }
  if (eps.empty()) co_return;
  // Ask each starting node for the nodes near us, then walk towards our own id.
  auto pending_count = std::make_shared<std::size_t>(0);
  auto done = std::make_shared<asio::steady_timer>(io_);
  for (const auto& ep : eps) {
    ++*pending_count;
    asio::co_spawn(
        io_,
        [self, ep, pending_count, done]() -> asio::awaitable<void> {
          message q;
          q.meth = method::find_node;
          q.target = self->table_.self();
          auto r = co_await self->query(self, ep, q, query_timeout);
          (void)r;
          if (--*pending_count == 0) done->cancel();
        },
        asio::detached);
  }
  done->expires_after(query_timeout + std::chrono::milliseconds(500));
  co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
  const node_id me = table_.self();
  // Named, not temporaries: GCC 12 mishandles temporaries around co_await.
  reply_fn ignore = [](const candidate&, const message&) {};
  fill_fn fill = [me](message& q) { q.target = me; };
  auto res = co_await lookup(self, method::find_node, me, ignore, fill);
  (void)res;
  log("dht: bootstrapped, " + std::to_string(table_.size()) + " nodes in the routing table");
}

asio::awaitable<void> node::maintenance_loop(std::shared_ptr<node> self) {
  auto last_bootstrap = clock::now();
  auto last_save = clock::now();
  auto last_expire = clock::now();
  while (is_open() && !stopped_) {
    maintenance_timer_->expires_after(std::chrono::seconds(5));
    co_await maintenance_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_ || !is_open()) break;
    const auto now = clock::now();
    if (now - secret_rotated_ > std::chrono::minutes(5)) {
      secrets_[1] = secrets_[0];
      randombytes_buf(secrets_[0].data(), secrets_[0].size());
      secret_rotated_ = now;
    }
    if (now - last_expire > std::chrono::minutes(1)) {
      store_.expire(now);
      std::erase_if(answered_, [&](const auto& kv) { return now - kv.second > std::chrono::hours(1); });
      std::erase_if(verifying_, [&](const auto& kv) { return now - kv.second > std::chrono::minutes(5); });
      last_expire = now;
    }
    if (table_.size() < bucket_size && now - last_bootstrap > std::chrono::seconds(30)) {
      last_bootstrap = now;
      asio::co_spawn(io_, bootstrap(self), asio::detached);
    }
    for (const auto& n : table_.questionable(now, 4))
      ping(n.ep);
    for (const auto& target : table_.stale_buckets(now, std::chrono::minutes(15))) {
      table_.touch(target, now);
      asio::co_spawn(
          io_,
          [self, target]() -> asio::awaitable<void> {
            reply_fn ignore = [](const candidate&, const message&) {};
            fill_fn fill = [target](message& q) { q.target = target; };
            auto r = co_await self->lookup(self, method::find_node, target, ignore, fill);
            (void)r;
          },
          asio::detached);
      break;  // one refresh per tick is plenty
    }
    if (now - last_save > std::chrono::minutes(10)) {
      save_state();
      last_save = now;
    }
  }
}

asio::awaitable<bool> node::wait_ready(std::chrono::milliseconds max) {
  asio::steady_timer t(io_);
  const auto until = clock::now() + max;
  auto twin_size = [this] { return twin_ ? twin_->table().size() : 0; };
  while (table_.size() == 0 && twin_size() == 0 && clock::now() < until && is_open()) {
    t.expires_after(std::chrono::milliseconds(50));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return table_.size() > 0 || twin_size() > 0;
}

asio::awaitable<std::size_t> node::get_peers(node_id info_hash, lookup_options opt,
                                             std::function<void(const std::vector<tcp::endpoint>&)> on_peers) {
  auto self = shared_from_this();
  auto found = std::make_shared<std::size_t>(0);
  reply_fn on_reply = [found, on_peers](const candidate&, const message& r) {
    if (!r.values.empty()) {
      *found += r.values.size();
      on_peers(r.values);
    }
  };
  fill_fn fill = [info_hash](message& q) { q.info_hash = info_hash; };
  // The IPv6 twin looks at the same time; its count is added at the end.
  auto twin_found = std::make_shared<std::optional<std::size_t>>();
  auto twin_done = std::make_shared<asio::steady_timer>(io_);
  twin_done->expires_at(asio::steady_timer::time_point::max());
  const bool with_twin = twin_ && twin_->running();
  if (with_twin) {
    auto twin = twin_;
    asio::co_spawn(
        io_,
        [twin, info_hash, opt, on_peers, twin_found, twin_done]() -> asio::awaitable<void> {
          // A twin that joined later than its IPv4 half gets a moment to find its first nodes.
          if (!twin->grace_used_) {
            twin->grace_used_ = true;
            const auto grace = std::chrono::milliseconds(3000);
            const bool ready = co_await twin->wait_ready(grace);
            (void)ready;
          }
          const std::size_t n = co_await twin->get_peers(info_hash, opt, on_peers);
          *twin_found = n;
          twin_done->cancel();
        },
        asio::detached);
  }
  auto closest = co_await lookup(self, method::get_peers, info_hash, on_reply, fill);
  if (opt.announce_port) {
    for (const auto& c : closest) {
      if (c.token.empty()) continue;
      message q;
      q.meth = method::announce_peer;
      q.info_hash = info_hash;
      q.token = c.token;
      q.port = *opt.announce_port;
      q.implied_port = opt.implied_port;
      q.seed = opt.seed;
      const udp::endpoint ep = c.n.ep;
      asio::co_spawn(
          io_,
          [self, ep, q]() -> asio::awaitable<void> {
            auto r = co_await self->query(self, ep, q, query_timeout);
            (void)r;
          },
          asio::detached);
    }
  }
  if (with_twin) {
    if (!*twin_found) co_await twin_done->async_wait(asio::as_tuple(asio::use_awaitable));
    *found += twin_found->value_or(0);
  }
  co_return *found;
}

asio::awaitable<node::scrape_result> node::scrape(node_id info_hash) {
  auto self = shared_from_this();
  auto out = std::make_shared<scrape_result>();
  auto gave = std::make_shared<std::set<std::string>>();  // endpoints whose filters are in
  reply_fn on_reply = [out, gave](const candidate& c, const message& r) {
    if (r.bf_seeds.size() != 256 && r.bf_peers.size() != 256) return;
    if (!gave->insert(c.n.ep.address().to_string() + "|" + std::to_string(c.n.ep.port())).second) return;
    ++out->answered;
    auto merge = [](std::string& into, const std::string& f) {
      if (f.size() != into.size()) return;
      for (std::size_t i = 0; i < f.size(); ++i)
        into[i] = static_cast<char>(static_cast<unsigned char>(into[i]) | static_cast<unsigned char>(f[i]));
    };
    merge(out->seeds, r.bf_seeds);
    merge(out->peers, r.bf_peers);
  };
  fill_fn fill = [info_hash](message& q) {
    q.info_hash = info_hash;
    q.scrape = true;
  };
  auto closest = co_await lookup(self, method::get_peers, info_hash, on_reply, fill);
  // A node that had not yet heard us answer its ping keeps its reply small (no
  // amplification), and the filters are the first thing it leaves out: by now it has heard
  // us (unless we are read-only): the closest that sent none are asked once more, after a
  // moment for our answer to the ping of the last ones to reach them.
  std::vector<candidate> again;
  for (const auto& c : closest) {
    if (!gave->count(c.n.ep.address().to_string() + "|" + std::to_string(c.n.ep.port()))) again.push_back(c);
  }
  if (!s_.read_only && !again.empty()) {
    asio::steady_timer pause(io_);
    pause.expires_after(std::chrono::milliseconds(500));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    for (const auto& c : again) {
      if (!is_open()) break;
      message q;
      q.meth = method::get_peers;
      fill(q);
      const udp::endpoint ep = c.n.ep;
      auto r = co_await query(self, ep, q, query_timeout);
      if (r && r->type == msg_type::response) on_reply(c, *r);
    }
  }
  co_return *out;
}

asio::awaitable<result<item_result>> node::get_item(node_id target, std::string salt) {
  auto self = shared_from_this();
  auto best = std::make_shared<std::optional<item_result>>();
  reply_fn on_reply = [best, target, salt](const candidate&, const message& r) {
    if (r.v.empty()) return;
    if (!verify_item(target, r.v, r.k, r.sig, r.k.empty() ? std::string() : salt, r.seq)) return;
    if (*best && (*best)->seq && r.seq && *r.seq <= *(*best)->seq) return;
    item_result it;
    it.v = r.v;
    it.seq = r.seq;
    it.k = r.k;
    it.sig = r.sig;
    it.salt = salt;
    *best = it;
  };
  fill_fn fill = [target](message& q) { q.target = target; };
  auto closest = co_await lookup(self, method::get, target, on_reply, fill);
  if (!*best && twin_ && twin_->running()) {
    auto twin = twin_;
    auto r = co_await twin->get_item(target, salt);
    co_return r;
  }
  if (!*best) co_return error{errc::io, "no node holds that item", no_offset};
  co_return std::move(**best);
}

asio::awaitable<result<node_id>> node::put_item(put_item_params p) {
  auto self = shared_from_this();
  if (p.v.empty() || p.v.size() > max_item_value) {
    co_return error{errc::invalid_argument, "a DHT item's value must be 1 to 1000 bencoded bytes", no_offset};
  }
  if (!bencode::decode(p.v, bencode::mode::lenient)) {
    co_return error{errc::invalid_argument, "the value is not bencoded", no_offset};
  }
  if (p.salt.size() > max_salt) co_return error{errc::invalid_argument, "salt longer than 64 bytes", no_offset};
  const bool is_mutable = !p.secret_seed.empty();
  std::string pk(32, '\0'), sk(64, '\0');
  node_id target;
  if (is_mutable) {
    if (p.secret_seed.size() != 32) co_return error{errc::invalid_argument, "the key seed must be 32 bytes", no_offset};
    crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pk.data()), reinterpret_cast<unsigned char*>(sk.data()),
                             reinterpret_cast<const unsigned char*>(p.secret_seed.data()));
    target = mutable_target(pk, p.salt);
  } else {
    target = immutable_target(p.v);
  }
  // A get first: tokens from the closest nodes, and the newest sequence number.
  auto newest = std::make_shared<std::optional<std::int64_t>>();
  const std::string pk_copy = pk, salt_copy = p.salt;
  reply_fn on_reply = [newest, target, pk_copy, salt_copy, is_mutable](const candidate&, const message& r) {
    // Only a sequence number under a valid signature of this key counts.
    if (!is_mutable || !r.seq || r.k != pk_copy) return;
    if (!verify_item(target, r.v, r.k, r.sig, salt_copy, r.seq)) return;
    if (!*newest || *r.seq > **newest) *newest = r.seq;
  };
  fill_fn fill = [target](message& q) { q.target = target; };
  auto closest = co_await lookup(self, method::get, target, on_reply, fill);
  message q;
  q.meth = method::put;
  q.v = p.v;
  if (is_mutable) {
    if (!p.seq && *newest && **newest == std::numeric_limits<std::int64_t>::max()) {
      co_return error{errc::invalid_argument, "the item's sequence number is at its maximum", no_offset};
    }
    const std::int64_t seq = p.seq ? *p.seq : (*newest ? **newest + 1 : 1);
    q.seq = seq;
    q.k = pk;
    q.salt = p.salt;
    const std::string buf = signature_buffer(p.salt, seq, p.v);
    q.sig.resize(64);
    crypto_sign_detached(reinterpret_cast<unsigned char*>(q.sig.data()), nullptr,
                         reinterpret_cast<const unsigned char*>(buf.data()), buf.size(),
                         reinterpret_cast<const unsigned char*>(sk.data()));
  }
  auto stored = std::make_shared<std::size_t>(0);
  auto last_error = std::make_shared<std::string>();
  auto left = std::make_shared<std::size_t>(0);
  auto done = std::make_shared<asio::steady_timer>(io_);
  for (const auto& c : closest) {
    if (c.token.empty()) continue;
    message pq = q;
    pq.token = c.token;
    const udp::endpoint ep = c.n.ep;
    ++*left;
    asio::co_spawn(
        io_,
        [self, ep, pq, stored, last_error, left, done]() -> asio::awaitable<void> {
          auto r = co_await self->query(self, ep, pq, query_timeout);
          if (r && r->type == msg_type::response) ++*stored;
          if (r && r->type == msg_type::error) *last_error = std::to_string(r->error_code) + " " + r->error_text;
          if (--*left == 0) done->cancel();
        },
        asio::detached);
  }
  if (*left > 0) {
    done->expires_after(query_timeout + std::chrono::milliseconds(500));
    co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (twin_ && twin_->running()) {
    auto twin = twin_;
    put_item_params p6 = p;
    p6.seq = q.seq;  // the same version on both families
    auto r6 = co_await twin->put_item(p6);
    if (r6) ++*stored;
  }
  if (*stored == 0) {
    co_return error{errc::io, "no node stored the item" + (last_error->empty() ? "" : " (" + *last_error + ")"),
                    no_offset};
  }
  co_return target;
}

}  // namespace shoal::dht
