// peer_connection: BEP 10 extensions (the extension handshake, ut_metadata served from
// our info dictionary, ut_pex both ways) and BEP 52 hash requests.
#include <algorithm>
#include <map>

#include "session/peer_connection.hpp"
#include "session/peer_internal.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"
#include "wire/metadata.hpp"
#include "wire/pex.hpp"

namespace shoal {

using namespace peer_detail;

void peer_connection::handle_extended(const wire::message& m) {
  if (!extended_) {
    // We sent it no extension handshake, so it cannot know our ids: nothing to act on.
    oddity("extended message without the extension protocol");
    return;
  }
  if (m.ext_id == 0) {
    auto e = wire::decode_ext_handshake(m.payload);
    if (!e) {
      protocol_error(e.err().message());
      return;
    }
    if (!got_ext_) {
      ext_ = std::move(*e);
      got_ext_ = true;
      return;
    }
    // Later handshakes carry changes only (BEP 10): merge what they say.
    for (const auto& [name, id] : e->messages) {
      if (id == 0)
        ext_.messages.erase(name);
      else
        ext_.messages[name] = id;
    }
    if (!e->client.empty()) ext_.client = e->client;
    if (e->reqq) ext_.reqq = e->reqq;
    if (e->listen_port) ext_.listen_port = e->listen_port;
    if (!e->yourip.empty()) ext_.yourip = e->yourip;
    if (e->metadata_size) ext_.metadata_size = e->metadata_size;
    ext_.upload_only = e->upload_only;
    return;
  }
  if (m.ext_id == our_ut_metadata) {
    on_metadata(m.payload);
    return;
  }
  if (m.ext_id == our_ut_pex) {
    on_pex(m.payload);
    return;
  }
  // Ids we never offered: an extension we do not speak. Ignored.
}

void peer_connection::on_pex(std::string_view payload) {
  if (torrent_->info().is_private) return;  // never offered for private torrents
  // A widely used client sends a ut_pex with no added and no dropped peers right after
  // the handshake (an empty dictionary, or empty strings): it means "nothing new". A
  // message we cannot read carries no contacts either. Neither is worth a connection.
  auto pex = wire::decode_pex(payload);
  if (!pex) {
    if (payload != "de") oddity(pex.err().message());
    return;
  }
  if (pex->added.empty() && pex->dropped.empty()) return;
  // BEP 11: at most one message a minute; a peer sending more gets the rest ignored.
  const auto now = clock::now();
  if (last_pex_in_ != clock::time_point{} && now - last_pex_in_ < min_pex_in_interval) return;
  last_pex_in_ = now;
  torrent_->on_pex(this, *pex);
}

std::optional<tcp::endpoint> peer_connection::listen_endpoint() const {
  if (outgoing_) return ep_;
  if (ext_.listen_port) return tcp::endpoint(ep_.address(), *ext_.listen_port);
  return std::nullopt;
}

void peer_connection::maybe_send_pex() {
  if (closed_ || torrent_->info().is_private || clock::now() < next_pex_) return;
  auto it = ext_.messages.find(wire::ut_pex);
  if (it == ext_.messages.end() || it->second == 0) return;
  next_pex_ = clock::now() + pex_interval;
  // The peers we are connected to now, against what this peer was told before.
  std::map<tcp::endpoint, std::uint8_t> now;
  for (const auto& [ep, flags] : torrent_->pex_contacts(this))
    now.emplace(ep, flags);
  wire::pex_message msg;
  const std::size_t limit = pex_told_.empty() ? wire::max_pex_contacts : wire::pex_batch;
  for (const auto& [ep, flags] : now) {
    if (msg.added.size() >= limit) break;
    if (pex_told_.insert(ep).second) msg.added.emplace_back(ep, flags);
  }
  for (auto t = pex_told_.begin(); t != pex_told_.end() && msg.dropped.size() < wire::pex_batch;) {
    if (now.count(*t) == 0) {
      msg.dropped.push_back(*t);
      t = pex_told_.erase(t);
    } else {
      ++t;
    }
  }
  if (msg.added.empty() && msg.dropped.empty()) return;
  std::string out;
  wire::put_extended(out, it->second, wire::encode_pex(msg));
  send(std::move(out));
}

void peer_connection::on_metadata(std::string_view payload) {
  // BEP 9: messages we do not understand (future types, say) are ignored, not punished.
  auto md = wire::decode_metadata_message(payload);
  if (!md) return;
  if (md->type != wire::metadata_msg::request) return;  // we never ask on this connection
  auto it = ext_.messages.find(wire::ut_metadata);
  if (it == ext_.messages.end() || it->second == 0) return;  // cannot answer a peer without the id
  const std::string& info = torrent_->info().info_bytes;
  const std::uint32_t pieces = wire::metadata_pieces(info.size());
  std::string out;
  if (md->piece >= pieces || ++metadata_served_ > pieces * metadata_requests_per_piece) {
    // Rejected, and past a bound, a flood: nobody asks a thousand times for what it was refused.
    if (++metadata_rejected_ > max_metadata_rejects) {
      ban("flooded ut_metadata requests (" + std::to_string(metadata_rejected_) + " rejected)");
      return;
    }
    wire::put_extended(out, it->second, wire::encode_metadata_reject(md->piece));
  } else {
    const std::size_t off = static_cast<std::size_t>(md->piece) * wire::metadata_piece_size;
    wire::put_extended(out, it->second,
                       wire::encode_metadata_data(md->piece, info.size(),
                                                  std::string_view(info).substr(off, wire::metadata_piece_size)));
  }
  send(std::move(out));
}

void peer_connection::on_hash_request(const wire::message& m) {
  using wire::msg;
  auto r = wire::decode_hash_request(m.payload);
  if (!r) {
    protocol_error(r.err().message());
    return;
  }
  // Only peers in the v2 swarm may ask (BEP 52), and for at most 512 hashes (the most
  // the BEP lets one request ask for): anything else is rejected, not computed.
  if (!v2_ || r->length > wire::max_hash_request_length) {
    std::string out;
    wire::put_hash_request(out, msg::hash_reject, *r);
    send(std::move(out));
    return;
  }
  if (r->base == 0) {
    // Leaf hashes need the data: hashed off the network thread, a few at a time.
    if (leaf_requests_ >= max_leaf_requests) {
      std::string out;
      wire::put_hash_request(out, msg::hash_reject, *r);
      send(std::move(out));
      return;
    }
    ++leaf_requests_;
    torrent_->serve_leaf_hashes(*r, [self = shared_from_this(), req = *r](std::optional<std::vector<sha256_digest>> h) {
      --self->leaf_requests_;
      if (self->closed_) return;
      std::string out;
      if (h) {
        wire::put_hashes(out, req, *h);
      } else {
        wire::put_hash_request(out, msg::hash_reject, req);
      }
      self->send(std::move(out));
    });
    return;
  }
  std::string out;
  if (auto h = torrent_->serve_hashes(*r)) {
    wire::put_hashes(out, *r, *h);
  } else {
    wire::put_hash_request(out, msg::hash_reject, *r);
  }
  send(std::move(out));
}

}  // namespace shoal
