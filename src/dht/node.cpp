#include "dht/node.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/bencode.hpp"
#include "core/text.hpp"
#include "storage/resume.hpp"

namespace shoal::dht {

namespace {

constexpr std::size_t alpha = 3;         // queries in flight per lookup
constexpr std::size_t lookup_width = 8;  // k: the closest nodes a lookup settles on
constexpr std::size_t max_candidates = 128;
constexpr auto query_timeout = std::chrono::milliseconds(2000);
constexpr auto lookup_deadline = std::chrono::seconds(30);
constexpr std::size_t max_verify_pings = 16;
constexpr std::size_t max_sources = 20000;
constexpr std::size_t max_answered = 8192;

std::string ep_key(const udp::endpoint& ep) {
  // Loopback sources are told apart by port: every test node lives on 127.0.0.1.
  if (ep.address().is_loopback()) return ep.address().to_string() + ":" + std::to_string(ep.port());
  return ep.address().to_string();
}

}  // namespace

// The unit a rate limit or a vote counts: an IPv4 address (a /24 for votes would punish
// NATed neighbours), an IPv6 /64 (one host usually owns a whole /64).
std::string source_prefix(const boost::asio::ip::address& a) {
  if (a.is_v4()) return a.to_string();
  auto b = a.to_v6().to_bytes();
  std::fill(b.begin() + 8, b.end(), 0);
  return boost::asio::ip::address_v6(b).to_string() + "/64";
}

namespace {

std::string addr_bytes(const boost::asio::ip::address& a) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  auto b = a.to_v6().to_bytes();
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

bool verify_item(const node_id& target, const std::string& v, const std::string& k, const std::string& sig,
                 const std::string& salt, std::optional<std::int64_t> seq) {
  if (v.empty() || v.size() > max_item_value) return false;
  if (k.empty()) return immutable_target(v) == target;
  if (!seq || sig.size() != 64 || k.size() != 32) return false;
  if (mutable_target(k, salt) != target) return false;
  const std::string buf = signature_buffer(salt, *seq, v);
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                     reinterpret_cast<const unsigned char*>(buf.data()), buf.size(),
                                     reinterpret_cast<const unsigned char*>(k.data())) == 0;
}

}  // namespace

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
  std::error_code ec;
  std::filesystem::create_directories(s_.state_file.parent_path(), ec);
  if (auto wec = write_file_atomically(s_.state_file, bencode::encode(d))) {
    log("dht: could not save state to " + s_.state_file.string() + ": " + wec.message());
  }
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

void node::send_error(const std::string& tid, int code, const std::string& text, const udp::endpoint& to,
                      std::size_t query_size) {
  message e;
  e.type = msg_type::error;
  e.tid = tid;
  e.error_code = code;
  e.error_text = text.substr(0, 100);
  std::string out = encode(e);
  if (!answered_.count(ep_key(to)) && out.size() > s_.reflection_factor * query_size) return;
  ++stats_.errors_out;
  send(out, to);
}

std::string node::make_token(const udp::endpoint& ep, const node_id& target, int generation) const {
  std::string buf = secrets_[static_cast<std::size_t>(generation)];
  buf += addr_bytes(ep.address());
  buf.append(reinterpret_cast<const char*>(target.data()), target.size());
  auto h = sha1(buf);
  return std::string(reinterpret_cast<const char*>(h.data()), 8);
}

bool node::valid_token(const std::string& token, const udp::endpoint& ep, const node_id& target) const {
  return token == make_token(ep, target, 0) || token == make_token(ep, target, 1);
}

void node::on_query(message& q, const udp::endpoint& from, std::size_t query_size) {
  const auto now = clock::now();
  const bool v6 = from.address().is_v6();
  if (!q.read_only) {
    // Its address is proven only once it answers us: the table takes it then.
    table_.heard_from(*q.id, from, false, node_id_valid_for(*q.id, from.address()), now);
    // One ping per unknown address at a time (a node that never answers gets no more).
    const std::string key = ep_key(from);
    if (!table_.find(from) && !answered_.count(key) && verify_pings_ < max_verify_pings &&
        verifying_.size() < 4 * max_verify_pings) {
      auto [it, fresh] = verifying_.emplace(key, now);
      if (fresh || now - it->second > std::chrono::minutes(5)) {
        it->second = now;
        ping(from);
      }
    }
  }
  message r;
  r.type = msg_type::response;
  r.tid = q.tid;
  r.id = table_.self();
  r.ip = from;
  r.version = s_.version;
  const bool want4 = q.want4 || (!q.want4 && !q.want6 && !v6);
  const bool want6 = q.want6 || (!q.want4 && !q.want6 && v6);
  auto other = other_family();
  auto nodes_for = [&](const node_id& target) {
    auto closest = table_.closest(target, bucket_size * 2);
    if (other && (v6_ ? want4 : want6)) {
      auto more = other->table().closest(target, bucket_size);
      closest.insert(closest.end(), more.begin(), more.end());
    }
    for (const auto& n : closest) {
      const bool nv6 = n.ep.address().is_v6();
      if (!nv6 && want4 && r.nodes.size() < bucket_size) r.nodes.push_back(n);
      if (nv6 && want6 && r.nodes6.size() < bucket_size) r.nodes6.push_back(n);
    }
  };
  switch (q.meth) {
    case method::ping:
      break;
    case method::find_node:
      if (!q.target) return send_error(q.tid, err_protocol, "find_node without a target", from, query_size);
      nodes_for(*q.target);
      break;
    case method::get_peers: {
      if (!q.info_hash) return send_error(q.tid, err_protocol, "get_peers without an info_hash", from, query_size);
      r.token = make_token(from, *q.info_hash, 0);
      r.values = store_.peers(*q.info_hash, v6, q.noseed);
      if (q.scrape && store_.has_torrent(*q.info_hash)) {
        auto [sd, pe] = store_.scrape(*q.info_hash);
        r.bf_seeds = sd;
        r.bf_peers = pe;
      }
      nodes_for(*q.info_hash);
      break;
    }
    case method::announce_peer: {
      if (!q.info_hash) {
        return send_error(q.tid, err_protocol, "announce_peer without an info_hash", from, query_size);
      }
      if (!valid_token(q.token, from, *q.info_hash)) {
        return send_error(q.tid, err_protocol, "bad token", from, query_size);
      }
      if (!q.implied_port && (!q.port || *q.port == 0)) {
        return send_error(q.tid, err_protocol, "announce_peer without a port", from, query_size);
      }
      const std::uint16_t port = q.implied_port ? from.port() : *q.port;
      store_.announce(*q.info_hash, tcp::endpoint(from.address(), port), q.seed, now);
      break;
    }
    case method::get: {
      if (!q.target) return send_error(q.tid, err_protocol, "get without a target", from, query_size);
      r.token = make_token(from, *q.target, 0);
      if (const stored_item* it = store_.item(*q.target)) {
        // The requester has this version already: the sequence number alone says so.
        const bool newer_known = q.seq && it->seq && *it->seq <= *q.seq;
        if (!newer_known) r.v = it->v;
        if (it->seq) {
          if (!newer_known) {
            r.k = it->k;
            r.sig = it->sig;
          }
          r.seq = it->seq;
        }
      }
      nodes_for(*q.target);
      break;
    }
    case method::put: {
      if (q.v.empty()) return send_error(q.tid, err_protocol, "put without a value", from, query_size);
      if (q.v.size() > max_item_value) {
        return send_error(q.tid, err_message_too_big, "value too big", from, query_size);
      }
      if (q.salt.size() > max_salt) return send_error(q.tid, err_salt_too_big, "salt too big", from, query_size);
      const bool is_mutable = !q.k.empty();
      if (is_mutable && (!q.seq || q.sig.empty())) {
        return send_error(q.tid, err_protocol, "mutable put without seq or sig", from, query_size);
      }
      const node_id target = is_mutable ? mutable_target(q.k, q.salt) : immutable_target(q.v);
      if (!valid_token(q.token, from, target)) return send_error(q.tid, err_protocol, "bad token", from, query_size);
      if (!verify_item(target, q.v, q.k, q.sig, q.salt, q.seq)) {
        return send_error(q.tid, err_invalid_signature, "invalid signature", from, query_size);
      }
      if (is_mutable) {
        if (const stored_item* old = store_.item(target); old && old->seq) {
          if (q.cas && *q.cas != *old->seq)
            return send_error(q.tid, err_cas_mismatch, "CAS mismatch", from, query_size);
          if (*q.seq < *old->seq || (*q.seq == *old->seq && q.v != old->v)) {
            return send_error(q.tid, err_sequence_too_old, "sequence number less than current", from, query_size);
          }
        }
      }
      stored_item it;
      it.v = q.v;
      if (is_mutable) {
        it.k = q.k;
        it.sig = q.sig;
        it.salt = q.salt;
        it.seq = q.seq;
      }
      store_.put_item(target, std::move(it), now);
      break;
    }
    case method::sample_infohashes: {
      if (!q.target) return send_error(q.tid, err_protocol, "sample_infohashes without a target", from, query_size);
      r.interval = 300;
      r.num = static_cast<std::int64_t>(store_.torrent_count());
      for (const auto& h : store_.sample(20))
        r.samples.append(reinterpret_cast<const char*>(h.data()), h.size());
      nodes_for(*q.target);
      break;
    }
    case method::unknown:
      return send_error(q.tid, err_method_unknown, "method unknown: " + q.method_text, from, query_size);
  }
  std::string out = encode(r);
  // No amplification: a node that has not answered us gets little more than it sent; and
  // no reply is fragmented.
  const bool stranger = !answered_.count(ep_key(from));
  const std::size_t cap =
      stranger ? std::min<std::size_t>(std::max<std::size_t>(s_.reflection_factor * query_size, 64), 1400) : 1400;
  bool trimmed = false;
  while (out.size() > cap) {
    trimmed = true;
    if (!r.values.empty()) {
      r.values.resize(r.values.size() / 2);
    } else if (!r.bf_seeds.empty()) {
      r.bf_seeds.clear();
      r.bf_peers.clear();
    } else if (!r.samples.empty()) {
      r.samples.resize(r.samples.size() / 40 * 20);
    } else if (!r.nodes6.empty()) {
      r.nodes6.pop_back();
    } else if (!r.nodes.empty()) {
      r.nodes.pop_back();
    } else if (!r.v.empty() || !r.sig.empty()) {
      r.v.clear();  // the token still lets it put; the value waits until it has answered us
      r.k.clear();
      r.sig.clear();
      r.seq.reset();
    } else {
      return;
    }
    out = encode(r);
  }
  if (trimmed) ++stats_.trimmed_replies;
  ++stats_.replies_out;
  send(out, from);
}

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
