// The DHT node answering queries: ping, find_node, get_peers, announce_peer, get and put
// (BEP 5, 32, 33, 44, 51), with tokens bound to the asker's address and replies never
// larger than a few times the query to a node that has not answered us (no reflection).
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

}  // namespace shoal::dht
