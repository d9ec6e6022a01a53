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
      if (metadata_only_) start_metadata_requests();
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
    if (metadata_only_ && !md_) start_metadata_requests();
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
  if (md->type != wire::metadata_msg::request) {
    if (metadata_only_) on_metadata_piece(*md);
    return;  // a torrent with metadata never asks
  }
  auto it = ext_.messages.find(wire::ut_metadata);
  if (it == ext_.messages.end() || it->second == 0) return;  // cannot answer a peer without the id
  // Without the metadata ourselves every request is rejected (within the same flood bound).
  const std::string& info = torrent_->info().info_bytes;
  const std::uint32_t pieces = metadata_only_ ? 0 : wire::metadata_pieces(info.size());
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

bool peer_connection::handle_before_metadata(const wire::message& m) {
  using wire::msg;
  switch (m.type) {
    case msg::choke:
      peer_choking_ = true;
      return true;
    case msg::unchoke:
      peer_choking_ = false;
      return true;
    case msg::interested:
    case msg::not_interested:
      peer_interested_ = m.type == msg::interested;
      return true;
    case msg::request:
      // Our have-none said we have nothing: a request is answered with a reject.
      if (fast_) {
        std::string r;
        wire::put_request(r, msg::reject, m.index, m.begin, m.length);
        send(std::move(r));
      }
      return !closed_;
    case msg::port:
      on_port(m.port);
      return true;
    case msg::extended:
      handle_extended(m);
      return !closed_;
    case msg::hash_request:
      if (auto r = wire::decode_hash_request(m.payload)) {
        std::string out;
        wire::put_hash_request(out, msg::hash_reject, *r);
        send(std::move(out));
      }
      return !closed_;
    default:
      // Haves, bitfields, blocks: nothing to act on before the metadata tells how many
      // pieces there are. The connection is dialled again once it is in.
      return true;
  }
}

void peer_connection::start_metadata_requests() {
  if (md_ || closed_) return;
  auto it = ext_.messages.find(wire::ut_metadata);
  if (it == ext_.messages.end() || it->second == 0 || !ext_.metadata_size) {
    // Another magnet fetcher, or a client without BEP 9: nothing to get here for now.
    torrent_->metadata_peer_failed(ep_, "the peer has no metadata to give");
    torrent_->penalize(ep_);
    close("metadata: the peer has none to give");
    return;
  }
  const std::uint64_t size = *ext_.metadata_size;
  if (size == 0 || size > wire::max_metadata_size) {
    torrent_->metadata_peer_failed(ep_, "the peer claims " + std::to_string(size) + " bytes of metadata");
    protocol_error("metadata: a size of " + std::to_string(size) + " bytes is not usable");
    return;
  }
  md_ = std::make_unique<metadata_request_state>();
  md_->their_id = it->second;
  md_->copy = std::make_unique<metadata_copy>(torrent_->md_budget(), size);
  md_->last = clock::now();
  std::string reqs;
  for (; md_->asked < md_->copy->pieces() && md_->asked < metadata_request_window; ++md_->asked)
    wire::put_extended(reqs, md_->their_id, wire::encode_metadata_request(md_->asked));
  send(std::move(reqs));
}

void peer_connection::on_metadata_piece(const wire::metadata_message& md) {
  if (!md_) {
    oddity("ut_metadata piece never asked for");
    return;
  }
  if (md.type == wire::metadata_msg::reject) {
    torrent_->metadata_peer_failed(ep_, "the peer rejected metadata piece " + std::to_string(md.piece));
    torrent_->penalize(ep_);
    close("metadata: the peer rejected piece " + std::to_string(md.piece));
    return;
  }
  if (md.type != wire::metadata_msg::data) return;
  auto& copy = *md_->copy;
  if (md.total_size != copy.size() || md.piece >= md_->asked || md.data.size() != copy.piece_size(md.piece)) {
    torrent_->metadata_peer_failed(ep_, "the peer sent a metadata piece of the wrong size or one not asked for");
    protocol_error("metadata: a piece of the wrong size or one not asked for");
    return;
  }
  const std::uint32_t before = copy.have();
  if (!copy.put(md.piece, md.data)) {
    // The copies of all peers are at their bound. A claim over half of it cannot be met
    // beside any other copy: that peer is not asked again (real info dictionaries are
    // far smaller); others may be, later.
    torrent_->metadata_peer_failed(ep_, "metadata buffers of all peers at their bound");
    if (copy.size() > max_metadata_buffered / 2) {
      ban("metadata: claims " + std::to_string(copy.size()) + " bytes, more than all copies may hold");
    } else {
      torrent_->penalize(ep_);
      close("metadata: buffers of all peers at their bound");
    }
    return;
  }
  if (copy.have() == before) return;  // a piece again
  md_->last = clock::now();
  if (md_->asked < copy.pieces()) {
    std::string req;
    wire::put_extended(req, md_->their_id, wire::encode_metadata_request(md_->asked++));
    send(std::move(req));
  }
  if (!copy.complete()) return;
  // Whole: the torrent checks it against the link's hashes and, if it matches, becomes a
  // torrent like any other (which closes this connection, to dial it again as a full one).
  auto state = std::move(md_);
  if (!torrent_->take_metadata(*state->copy)) ban("metadata does not match the info-hash");
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
