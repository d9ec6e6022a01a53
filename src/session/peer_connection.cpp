#include "session/peer_connection.hpp"

#include "net/encrypted_stream.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "session/session.hpp"
#include "session/torrent.hpp"
#include "wire/metadata.hpp"
#include "wire/pex.hpp"

namespace shoal {

namespace {
constexpr std::size_t read_buffer_size = 2 * (wire::max_message_size + 4);
constexpr std::uint32_t default_peer_reqq = 250;
// Disk reads we keep in flight for one peer, and bytes we let pile up unsent.
constexpr std::uint32_t max_reads_in_flight = 8;
// Contiguous requests are read from disk together, up to this many bytes.
constexpr std::uint32_t max_read_span = 256 * 1024;
constexpr std::uint64_t max_send_backlog = 4u << 20;
constexpr std::uint8_t our_ut_metadata = 1;  // the id peers use to send us ut_metadata
constexpr std::uint8_t our_ut_pex = 2;
// BEP 52 upgrade: a v1 handshake for a hybrid torrent that offers v2 is answered with
// the v2 info-hash, so the connection can exchange merkle hashes.
constexpr bool upgrade_to_v2 = true;
// BEP 11: the first PEX message a little after the handshake, then at most one a minute.
constexpr auto first_pex_after = std::chrono::seconds(2);
constexpr auto pex_interval = std::chrono::seconds(60);
constexpr auto min_pex_in_interval = std::chrono::seconds(45);
// Metadata requests served per connection before rejecting (flood guard, BEP 9).
constexpr std::uint32_t metadata_requests_per_piece = 4;
// Cancelled or dropped requests remembered, so a late answer is not taken for abuse.
constexpr std::size_t max_cancelled = 2048;
using clock = std::chrono::steady_clock;
}  // namespace

peer_connection::peer_connection(session& s, std::unique_ptr<net::stream> st, bool outgoing)
    : session_(s), stream_(std::move(st)), outgoing_(outgoing), rbuf_(read_buffer_size), wake_(s.io()) {
  if (stream_) ep_ = stream_->remote_endpoint();
  last_recv_ = last_send_ = last_block_ = clock::now();
}

peer_connection::~peer_connection() = default;

void peer_connection::start_outgoing(std::shared_ptr<torrent> t, tcp::endpoint ep) {
  torrent_ = std::move(t);
  ep_ = ep;
  asio::co_spawn(session_.io(), run(shared_from_this(), ep), asio::detached);
}

void peer_connection::start_incoming() {
  asio::co_spawn(session_.io(), run(shared_from_this(), std::nullopt), asio::detached);
}

void peer_connection::close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = why;
  if (session_.settings().log) {
    std::string totals;
    if (attached_) {
      totals = " (received " + std::to_string(down_.total()) + " B, sent " + std::to_string(up_.total()) + " B)";
    }
    session_.settings().log("peer " + ep_.address().to_string() + ":" + std::to_string(ep_.port()) + " closed: " + why +
                            totals);
  }
  if (stream_) stream_->close();
  wake_.cancel();
  drop_requests();
  if (torrent_ && attached_) {
    attached_ = false;
    torrent_->detach(this);
  }
}

void peer_connection::violation(const std::string& why) {
  // A peer that breaks the protocol is not worth reconnecting to.
  if (torrent_ && !closed_) torrent_->ban(this, why);
  close(why);
}

asio::awaitable<void> peer_connection::run(std::shared_ptr<peer_connection> self,
                                           std::optional<tcp::endpoint> connect_to) {
  // One deadline covers connecting and the handshake.
  asio::steady_timer guard(self->session_.io());
  guard.expires_after(self->session_.settings().connect_timeout);
  const char* what = connect_to ? "connect timeout" : "handshake timeout";
  guard.async_wait([self, what](boost::system::error_code ec) {
    if (!ec && !self->attached_) self->close(what);
  });
  bool ok = connect_to ? co_await self->offer_encryption(*connect_to) : co_await self->accept_encryption();
  if (ok) ok = co_await self->exchange_handshake(connect_to.has_value());
  guard.cancel();
  if (!ok) co_return;
  self->after_handshake();
  if (self->closed_) co_return;
  asio::co_spawn(self->session_.io(), timer_loop(self), asio::detached);
  co_await self->read_loop();
}

asio::awaitable<bool> peer_connection::encryption_handshake(wire::mse::handshake h, std::string first,
                                                            std::string& why) {
  auto st = first.empty() ? wire::mse::handshake::status::need_more : h.feed(first);
  std::array<char, 1024> buf{};
  for (;;) {
    const std::string out = h.take_output();
    if (!out.empty()) {
      auto [wec, wn] = co_await stream_->write(asio::buffer(out));
      if (wec) {
        why = "encryption handshake: " + wec.message();
        co_return false;
      }
    }
    if (st == wire::mse::handshake::status::done) break;
    if (st == wire::mse::handshake::status::failed) {
      why = h.err().message();
      co_return false;
    }
    auto [ec, n] = co_await stream_->read_some(asio::buffer(buf));
    if (ec || closed_) {
      why = "encryption handshake: " + (ec ? ec.message() : std::string("closed"));
      co_return false;
    }
    st = h.feed(std::string_view(buf.data(), n));
  }
  auto enc = h.take_encryptor();
  auto dec = h.take_decryptor();
  stream_ =
      std::make_unique<net::encrypted_stream>(std::move(stream_), std::move(enc), std::move(dec), h.take_leftover());
  co_return true;
}

asio::awaitable<bool> peer_connection::accept_encryption() {
  const auto pol = session_.settings().encryption;
  // A plaintext handshake starts with these 20 bytes; MSE with 96 bytes of a DH key.
  static constexpr std::string_view plain_start(
      "\x13"
      "BitTorrent protocol",
      20);
  std::string first(plain_start.size(), '\0');
  auto [ec, n] = co_await net::read_exact(*stream_, asio::buffer(first));
  if (ec || closed_) {
    close("handshake: " + (ec ? ec.message() : std::string("closed")));
    co_return false;
  }
  if (first == plain_start) {
    if (pol == wire::mse::policy::required) {
      close("plaintext handshake refused: encryption is required");
      co_return false;
    }
    // The bytes read to tell plaintext from MSE start the handshake; the stream stays bare
    // (no pass-through wrapper on every later read and write).
    handshake_prefix_ = std::move(first);
    co_return true;
  }
  if (!net::rc4_available()) {
    close("encrypted handshake refused: RC4 is unavailable in this OpenSSL");
    co_return false;
  }
  auto find = [this](const sha1_digest& req2) { return session_.find_by_obfuscated_hash(req2); };
  const std::uint32_t allowed = wire::mse::accept_for(pol);
  std::string why;
  if (!co_await encryption_handshake(wire::mse::handshake::responder(find, allowed), std::move(first), why)) {
    close(why);
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> peer_connection::offer_encryption(const tcp::endpoint& ep) {
  auto pol = session_.settings().encryption;
  if (!net::rc4_available() && pol == wire::mse::policy::preferred) pol = wire::mse::policy::allowed;
  auto [ec, st] = co_await session_.connect_peer(ep);
  if (ec || closed_) {
    close(ec ? "connect: " + ec.message() : "closed");
    co_return false;
  }
  stream_ = std::move(st);
  if (pol == wire::mse::policy::allowed) co_return true;
  if (pol == wire::mse::policy::preferred && session_.plaintext_only(ep)) co_return true;
  const std::uint32_t provide = wire::mse::offer_for(pol);
  // A peer that does not speak MSE may just wait for a plaintext handshake: give it a few
  // seconds, not the whole connect deadline.
  asio::steady_timer limit(session_.io());
  bool timed_out = false;
  limit.expires_after(session_.settings().encryption_timeout);
  auto* raw = stream_.get();
  limit.async_wait([&timed_out, raw](boost::system::error_code tec) {
    if (!tec) {
      timed_out = true;
      raw->close();
    }
  });
  std::string why;
  const bool ok =
      co_await encryption_handshake(wire::mse::handshake::initiator(torrent_->wire_hash(), provide), {}, why);
  limit.cancel();
  if (ok) co_return true;
  if (timed_out) why = "encryption handshake: no answer";
  if (pol == wire::mse::policy::required || closed_) {
    close(why);
    co_return false;
  }
  // "preferred": the peer may not speak MSE at all; dial again in plaintext.
  if (session_.settings().log) {
    session_.settings().log("peer " + ep.address().to_string() + ":" + std::to_string(ep.port()) + ": " + why +
                            "; retrying in plaintext");
  }
  stream_->close();
  auto [ec2, st2] = co_await session_.connect_peer(ep);
  if (ec2 || closed_) {
    close(ec2 ? "connect: " + ec2.message() : "closed");
    co_return false;
  }
  stream_ = std::move(st2);
  session_.learned_plaintext(ep);
  co_return true;
}

asio::awaitable<bool> peer_connection::exchange_handshake(bool we_send_first) {
  wire::handshake ours;
  ours.set_extension_protocol();
  ours.set_fast_extension();
  ours.id = session_.id();
  // BEP 52: a hybrid torrent's v1 handshake says we could switch to its v2 info-hash.
  auto v2_bit = [this](wire::handshake& h) {
    if (torrent_->info().has_v2()) h.reserved[7] |= 0x10;
  };
  std::string in(wire::handshake_size, '\0');
  // BEP 5: the DHT bit, and a PORT message after the handshake (not for private torrents).
  auto dht_bit = [this](wire::handshake& h) {
    if (session_.dht_node() && session_.dht_node()->running() && !torrent_->info().is_private) h.set_dht();
  };
  if (we_send_first) {
    ours.info_hash = torrent_->wire_hash();
    dht_bit(ours);
    v2_bit(ours);
    const std::string out = wire::encode_handshake(ours);  // named: it must outlive the write
    auto [ec, n] = co_await stream_->write(asio::buffer(out));
    if (ec) {
      close("handshake: " + ec.message());
      co_return false;
    }
  }
  const std::size_t had = std::min(handshake_prefix_.size(), in.size());
  std::memcpy(in.data(), handshake_prefix_.data(), had);
  handshake_prefix_.clear();
  auto [ec, n] = co_await net::read_exact(*stream_, asio::buffer(in.data() + had, in.size() - had));
  if (ec || closed_) {
    close("handshake: " + (ec ? ec.message() : std::string("closed")));
    co_return false;
  }
  auto hs = wire::decode_handshake(in);
  if (!hs) {
    close(hs.err().message());
    co_return false;
  }
  their_hs_ = *hs;
  if (their_hs_.id == session_.id()) {
    if (we_send_first) session_.learned_self(ep_);
    close("connected to ourselves");
    co_return false;
  }
  if (we_send_first) {
    if (their_hs_.info_hash == torrent_->wire_hash()) {
      v2_ = !torrent_->info().has_v1();
    } else if (torrent_->v2_wire_hash() && their_hs_.info_hash == *torrent_->v2_wire_hash()) {
      v2_ = true;  // the remote upgraded the connection to the v2 swarm
    } else {
      close("handshake: peer answered for another torrent");
      co_return false;
    }
  } else {
    torrent_ = session_.find_torrent(their_hs_.info_hash);
    if (!torrent_ || !torrent_->accepting_peers()) {
      close("handshake: unknown torrent");
      co_return false;
    }
    if (torrent_->is_banned(ep_)) {
      close("banned");
      co_return false;
    }
    ours.info_hash = torrent_->wire_hash();
    v2_ = !torrent_->info().has_v1();
    if (torrent_->v2_wire_hash() &&
        (their_hs_.info_hash == *torrent_->v2_wire_hash() || (their_hs_.v2_upgrade() && upgrade_to_v2))) {
      // A hybrid: the peer came for the v2 swarm, or offered to upgrade (BEP 52).
      ours.info_hash = *torrent_->v2_wire_hash();
      v2_ = true;
    }
    dht_bit(ours);
    v2_bit(ours);
    const std::string out = wire::encode_handshake(ours);
    auto [wec, wn] = co_await stream_->write(asio::buffer(out));
    if (wec) {
      close("handshake: " + wec.message());
      co_return false;
    }
  }
  fast_ = their_hs_.fast_extension();
  extended_ = their_hs_.extension_protocol();
  co_return true;
}

void peer_connection::after_handshake() {
  has_ = bitfield(torrent_->num_pieces());
  if (!torrent_->attach(shared_from_this())) {
    close("torrent refused the connection");
    return;
  }
  attached_ = true;
  if (session_.settings().log) {
    session_.settings().log("peer " + ep_.address().to_string() + ":" + std::to_string(ep_.port()) + " connected (" +
                            (outgoing_ ? "outgoing" : "incoming") + ", " + transport() +
                            (encrypted() ? ", rc4" : ", plaintext") + (v2_ && torrent_->info().has_v1() ? ", v2" : "") +
                            ")");
  }
  std::string msgs;
  if (extended_) {
    wire::ext_handshake e;
    e.client = session_.settings().client_name;
    e.reqq = session_.settings().max_peer_requests;
    e.listen_port = session_.port();
    e.upload_only = torrent_->finished();
    if (ep_.address().is_v4()) {
      auto b = ep_.address().to_v4().to_bytes();
      e.yourip.assign(reinterpret_cast<const char*>(b.data()), b.size());
    } else {
      auto b = ep_.address().to_v6().to_bytes();
      e.yourip.assign(reinterpret_cast<const char*>(b.data()), b.size());
    }
    // BEP 9: offer the info dictionary to peers that came with only a magnet link.
    e.messages[std::string(wire::ut_metadata)] = our_ut_metadata;
    e.metadata_size = torrent_->info().info_bytes.size();
    // BEP 27: private torrents learn peers from their trackers only.
    if (!torrent_->info().is_private) e.messages[std::string(wire::ut_pex)] = our_ut_pex;
    next_pex_ = clock::now() + first_pex_after;
    wire::put_extended(msgs, 0, wire::encode_ext_handshake(e));
  }
  const bitfield& mine = torrent_->picker().have_bits();
  if (their_hs_.dht() && session_.dht_node() && session_.dht_node()->running() && !torrent_->info().is_private) {
    wire::put_port(msgs, session_.dht_node()->port());
  }
  if (fast_ && mine.all()) {
    wire::put_simple(msgs, wire::msg::have_all);
  } else if (fast_ && mine.none()) {
    wire::put_simple(msgs, wire::msg::have_none);
  } else if (!mine.none()) {
    wire::put_bitfield(msgs, mine.bytes());
  }
  send(std::move(msgs));
}

asio::awaitable<void> peer_connection::read_loop() {
  auto self = shared_from_this();
  asio::steady_timer pause(session_.io());
  while (!closed_) {
    // Back-pressure: the disk is behind, so stop taking data from the network.
    while (torrent_->disk_backlogged() && !closed_) {
      pause.expires_after(std::chrono::milliseconds(5));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (rend_ == rbuf_.size()) {
      // Compact: move the partial message to the front.
      std::memmove(rbuf_.data(), rbuf_.data() + rbegin_, rend_ - rbegin_);
      rend_ -= rbegin_;
      rbegin_ = 0;
    }
    auto [ec, n] = co_await stream_->read_some(asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_));
    if (ec || closed_) {
      close(ec ? ec.message() : "closed");
      co_return;
    }
    rend_ += n;
    last_recv_ = clock::now();
    // Frame and handle every complete message in the buffer.
    while (!closed_) {
      std::string_view avail(rbuf_.data() + rbegin_, rend_ - rbegin_);
      auto len = wire::peek_length(avail);
      if (!len) break;
      if (*len > wire::max_message_size) {
        violation("message of " + std::to_string(*len) + " bytes exceeds the limit");
        co_return;
      }
      if (avail.size() < 4 + *len) {
        if (rbegin_ + 4 + *len > rbuf_.size()) {
          std::memmove(rbuf_.data(), rbuf_.data() + rbegin_, rend_ - rbegin_);
          rend_ -= rbegin_;
          rbegin_ = 0;
        }
        break;
      }
      auto m = wire::decode_message(avail.substr(4, *len));
      rbegin_ += 4 + *len;
      if (!m) {
        violation(m.err().message());
        co_return;
      }
      if (!handle(*m)) co_return;
    }
    if (rbegin_ == rend_) rbegin_ = rend_ = 0;
    // Global download limit: wait out the debt before reading more.
    auto wait = session_.download_limit().consume(n);
    if (wait.count() > 0 && !closed_) {
      pause.expires_after(wait);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
}

asio::awaitable<void> peer_connection::timer_loop(std::shared_ptr<peer_connection> self) {
  co_await self->timer_body();
}

asio::awaitable<void> peer_connection::timer_body() {
  asio::steady_timer t(session_.io());
  const auto& st = session_.settings();
  while (!closed_) {
    t.expires_after(std::chrono::seconds(1));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (closed_) co_return;
    const auto now = clock::now();
    if (now - last_recv_ > st.peer_timeout) {
      close("timed out: nothing received for " + std::to_string(st.peer_timeout.count()) + " s");
      co_return;
    }
    if (now - last_send_ > st.keep_alive) {
      std::string ka;
      wire::put_keep_alive(ka);
      send(std::move(ka));
    }
    if (!outstanding_.empty() && now - last_block_ > st.request_timeout && !snubbed_) {
      // Snubbed: give its requests to other peers, ask it for one block at a time.
      snubbed_ = true;
      if (fast_) {
        std::string cancels;
        for (const auto& b : outstanding_)
          wire::put_request(cancels, wire::msg::cancel, b.piece, b.begin, b.length);
        send(std::move(cancels));
      }
      drop_requests();
      for (auto& p : torrent_->peers())
        p->fill_requests();
    }
    fill_requests();
    maybe_send_pex();
  }
}

bool peer_connection::handle(const wire::message& m) {
  using wire::msg;
  const std::uint32_t np = torrent_->num_pieces();
  auto need_fast = [&]() {
    if (!fast_) violation("fast-extension message " + std::string(wire::msg_name(m.type)) + " without the extension");
    return fast_;
  };
  switch (m.type) {
    case msg::keep_alive:
      return true;
    case msg::choke:
      peer_choking_ = true;
      // Without the fast extension a choke cancels every request.
      if (!fast_) drop_requests();
      return true;
    case msg::unchoke:
      peer_choking_ = false;
      fill_requests();
      return true;
    case msg::interested:
      peer_interested_ = true;
      torrent_->on_peer_interest_changed(this);
      return true;
    case msg::not_interested:
      peer_interested_ = false;
      torrent_->on_peer_interest_changed(this);
      return true;
    case msg::have:
      if (m.index >= np) {
        violation("have for piece " + std::to_string(m.index) + " out of range");
        return false;
      }
      // A peer with nothing may skip the bitfield (BEP 3): after a have, one is too late.
      got_bitfield_ = true;
      if (!has_.get(m.index)) {
        has_.set(m.index);
        torrent_->on_have(this, m.index);
      }
      return !closed_;
    case msg::bitfield: {
      bitfield b(np);
      if (!b.assign(m.payload)) {
        violation("bitfield of " + std::to_string(m.payload.size()) + " bytes does not fit " + std::to_string(np) +
                  " pieces");
        return false;
      }
      if (got_bitfield_) {
        // aria2 sends its whole bitfield again, instead of haves, as it gets pieces: its
        // new pieces count as haves. A peer cannot lose pieces, so cleared bits are ignored.
        for (std::uint32_t i = 0; i < np && !closed_; ++i) {
          if (b.get(i) && !has_.get(i)) {
            has_.set(i);
            torrent_->on_have(this, i);
          }
        }
        return !closed_;
      }
      has_ = std::move(b);
      got_bitfield_ = true;
      counted_seed_ = has_.all();
      torrent_->picker().add_peer(has_, counted_seed_);
      update_interest();
      if (torrent_->fetching_layers()) torrent_->request_hashes(this);
      return !closed_;
    }
    case msg::have_all:
      if (!need_fast()) return false;
      if (got_bitfield_) {
        // aria2 again, once complete: the pieces it lacked count as haves.
        for (std::uint32_t i = 0; i < np && !closed_; ++i) {
          if (!has_.get(i)) {
            has_.set(i);
            torrent_->on_have(this, i);
          }
        }
        return !closed_;
      }
      has_.set_all();
      got_bitfield_ = true;
      counted_seed_ = true;
      torrent_->picker().add_peer(has_, true);
      update_interest();
      if (torrent_->fetching_layers()) torrent_->request_hashes(this);
      return !closed_;
    case msg::have_none:
      if (!need_fast()) return false;
      got_bitfield_ = true;
      return true;
    case msg::request:
      on_request(m);
      return !closed_;
    case msg::cancel: {
      auto it = std::find(incoming_.begin(), incoming_.end(), block_ref{m.index, m.begin, m.length});
      if (it != incoming_.end()) {
        incoming_.erase(it);
        if (fast_) {
          std::string r;
          wire::put_request(r, msg::reject, m.index, m.begin, m.length);
          send(std::move(r));
        }
      }
      return true;
    }
    case msg::piece:
      on_piece(m);
      return !closed_;
    case msg::reject: {
      if (!need_fast()) return false;
      block_ref b{m.index, m.begin, m.length};
      auto it = std::find(outstanding_.begin(), outstanding_.end(), b);
      if (it != outstanding_.end()) {
        outstanding_.erase(it);
        torrent_->picker().abort_request(b);
      } else if (auto c = std::find(cancelled_.begin(), cancelled_.end(), b); c != cancelled_.end()) {
        cancelled_.erase(c);
      }
      return true;
    }
    case msg::allowed_fast:
      if (!need_fast()) return false;
      if (m.index < np && allowed_fast_.size() < 64) allowed_fast_.push_back(m.index);
      return true;
    case msg::suggest:
      if (!need_fast()) return false;
      return true;
    case msg::port:
      // A DHT node at the peer's address: worth a ping into our routing table (BEP 5).
      if (m.port != 0 && session_.dht_node() && !torrent_->info().is_private) {
        session_.dht_node()->add_contact(dht::udp::endpoint(ep_.address(), m.port));
      }
      return true;
    case msg::extended:
      handle_extended(m);
      return !closed_;
    case msg::hash_request: {
      auto r = wire::decode_hash_request(m.payload);
      if (!r) {
        violation(r.err().message());
        return false;
      }
      if (r->base == 0) {
        // Leaf hashes need the data: hashed off the network thread, a few at a time.
        if (leaf_requests_ >= 4) {
          std::string out;
          wire::put_hash_request(out, msg::hash_reject, *r);
          send(std::move(out));
          return true;
        }
        ++leaf_requests_;
        torrent_->serve_leaf_hashes(*r,
                                    [self = shared_from_this(), req = *r](std::optional<std::vector<sha256_digest>> h) {
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
        return true;
      }
      std::string out;
      if (auto h = torrent_->serve_hashes(*r)) {
        wire::put_hashes(out, *r, *h);
      } else {
        wire::put_hash_request(out, msg::hash_reject, *r);
      }
      send(std::move(out));
      return true;
    }
    case msg::hashes: {
      auto h = wire::decode_hashes(m.payload);
      if (!h) {
        violation(h.err().message());
        return false;
      }
      torrent_->on_hashes(this, *h);
      return !closed_;
    }
    case msg::hash_reject: {
      auto r = wire::decode_hash_request(m.payload);
      if (!r) {
        violation(r.err().message());
        return false;
      }
      torrent_->on_hash_reject(this, *r);
      return true;
    }
  }
  return true;
}

void peer_connection::handle_extended(const wire::message& m) {
  if (!extended_) {
    violation("extended message without the extension protocol");
    return;
  }
  if (m.ext_id == 0) {
    auto e = wire::decode_ext_handshake(m.payload);
    if (!e) {
      close(e.err().message());
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
    if (torrent_->info().is_private) return;  // never offered for private torrents
    // BEP 11: at most one message a minute; a peer sending more gets the rest ignored.
    const auto now = clock::now();
    if (last_pex_in_ != clock::time_point{} && now - last_pex_in_ < min_pex_in_interval) return;
    last_pex_in_ = now;
    auto pex = wire::decode_pex(m.payload);
    if (!pex) {
      violation(pex.err().message());
      return;
    }
    torrent_->on_pex(this, *pex);
    return;
  }
  // Other extensions (ut_pex, ...) are not offered yet; peers should not send them.
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
    wire::put_extended(out, it->second, wire::encode_metadata_reject(md->piece));
  } else {
    const std::size_t off = static_cast<std::size_t>(md->piece) * wire::metadata_piece_size;
    wire::put_extended(out, it->second,
                       wire::encode_metadata_data(md->piece, info.size(),
                                                  std::string_view(info).substr(off, wire::metadata_piece_size)));
  }
  send(std::move(out));
}

void peer_connection::on_request(const wire::message& m) {
  const block_ref b{m.index, m.begin, m.length};
  auto reject = [&] {
    if (fast_) {
      std::string r;
      wire::put_request(r, wire::msg::reject, b.piece, b.begin, b.length);
      send(std::move(r));
    }
  };
  if (m.index >= torrent_->num_pieces() || m.length == 0 || m.length > wire::max_request_length ||
      static_cast<std::uint64_t>(m.begin) + m.length > torrent_->served_piece_size(m.index)) {
    violation("request out of range (piece " + std::to_string(m.index) + ", offset " + std::to_string(m.begin) +
              ", length " + std::to_string(m.length) + ")");
    return;
  }
  if (am_choking_) {
    // Requests while choked: reject (fast) or ignore; a flood of them is abuse.
    if (++choked_requests_ > session_.settings().max_choked_requests) {
      violation("sent " + std::to_string(choked_requests_) + " requests while choked");
      return;
    }
    reject();
    return;
  }
  if (!torrent_->picker().have(m.index)) {
    reject();
    return;
  }
  if (incoming_.size() >= session_.settings().max_peer_requests) {
    violation("request queue over " + std::to_string(session_.settings().max_peer_requests));
    return;
  }
  incoming_.push_back(b);
  serve_requests();
}

void peer_connection::serve_requests() {
  while (!closed_ && !am_choking_ && !incoming_.empty() && reads_in_flight_ < max_reads_in_flight &&
         send_queued_bytes_ < max_send_backlog) {
    // A run of requests contiguous in one piece is served by one disk read.
    auto run = std::make_shared<std::vector<block_ref>>();
    run->push_back(incoming_.front());
    incoming_.pop_front();
    std::uint32_t span = run->front().length;
    while (!incoming_.empty() && incoming_.front().piece == run->front().piece &&
           incoming_.front().begin == run->back().begin + run->back().length &&
           span + incoming_.front().length <= max_read_span) {
      span += incoming_.front().length;
      run->push_back(incoming_.front());
      incoming_.pop_front();
    }
    ++reads_in_flight_;
    send_queued_bytes_ += span;
    auto self = shared_from_this();
    torrent_->async_read_block(
        run->front().piece, run->front().begin, span,
        [self, run, span](std::error_code ec, std::string data) { self->on_blocks_read(*run, span, ec, data); });
  }
}

void peer_connection::on_blocks_read(const std::vector<block_ref>& run, std::uint32_t span, std::error_code ec,
                                     const std::string& data) {
  --reads_in_flight_;
  if (closed_) return;
  if (ec) {
    send_queued_bytes_ -= span;
    close("disk read failed: " + ec.message());
    return;
  }
  std::string msgs;
  msgs.reserve(span + 13 * run.size());
  for (const auto& b : run) {
    wire::put_piece_header(msgs, b.piece, b.begin, b.length);
    msgs.append(data, b.begin - run.front().begin, b.length);
  }
  up_.add(span);
  torrent_->count_upload(span);
  auto wait = session_.upload_limit().consume(span);
  send(std::move(msgs));
  if (wait.count() > 0) {
    // Over the global upload limit: pause serving for the debt.
    auto self = shared_from_this();
    auto t = std::make_shared<asio::steady_timer>(session_.io(), wait);
    ++reads_in_flight_;  // holds the pipeline until the timer fires
    t->async_wait([self, t](boost::system::error_code) {
      --self->reads_in_flight_;
      self->serve_requests();
    });
    return;
  }
  serve_requests();
}

void peer_connection::on_piece(const wire::message& m) {
  const block_ref b{m.index, m.begin, m.length};
  // Blocks nearly always arrive in the order asked for: try the front before searching.
  auto it = !outstanding_.empty() && outstanding_.front() == b ? outstanding_.begin()
                                                               : std::find(outstanding_.begin(), outstanding_.end(), b);
  if (it == outstanding_.end()) {
    // Not outstanding: a block we cancelled or dropped may still come (BEP 6 lets a peer
    // finish a cancelled request); anything else, with the fast extension, is a violation.
    torrent_->count_wasted(m.length);
    auto c = std::find(cancelled_.begin(), cancelled_.end(), b);
    if (c != cancelled_.end()) {
      cancelled_.erase(c);
      return;
    }
    if (fast_) violation("sent a block that was never requested (piece " + std::to_string(m.index) + ")");
    return;
  }
  outstanding_.erase(it);
  last_block_ = clock::now();
  snubbed_ = false;
  down_.add(m.length);
  torrent_->on_block(this, m.index, m.begin, m.payload);
  if (!closed_) fill_requests();
}

std::uint32_t peer_connection::queue_depth() {
  const auto& st = session_.settings();
  if (snubbed_) return 1;
  const double per_block = wire::block_size;
  auto depth = static_cast<std::uint32_t>(down_.rate() * st.request_queue_seconds / per_block);
  depth = std::max(depth, st.min_request_queue);
  depth = std::min(depth, st.max_request_queue);
  depth = std::min(depth, ext_.reqq.value_or(default_peer_reqq));
  return depth;
}

void peer_connection::fill_requests() {
  if (closed_ || !am_interested_ || !got_bitfield_ || !torrent_->hashes_ready()) return;
  if (peer_choking_ && allowed_fast_.empty()) return;
  const std::uint32_t depth = queue_depth();
  // Refill in batches of about an eighth of the queue: one pick per block is wasted work.
  const std::uint32_t batch = std::max<std::uint32_t>(1, depth / 8);
  if (outstanding_.size() + batch > depth) return;
  pick_buf_.clear();
  auto mine = [this](const block_ref& b) {
    return std::find(outstanding_.begin(), outstanding_.end(), b) != outstanding_.end();
  };
  torrent_->picker().pick(has_, has_.all(), depth - static_cast<std::uint32_t>(outstanding_.size()), mine, pick_buf_,
                          static_cast<std::uint32_t>(outstanding_.size()));
  if (pick_buf_.empty()) {
    update_interest();
    return;
  }
  std::string msgs;
  for (const auto& b : pick_buf_) {
    if (peer_choking_ && std::find(allowed_fast_.begin(), allowed_fast_.end(), b.piece) == allowed_fast_.end()) {
      continue;
    }
    torrent_->picker().mark_requested(b);
    outstanding_.push_back(b);
    wire::put_request(msgs, wire::msg::request, b.piece, b.begin, b.length);
  }
  // Blocks picked but not requested (choked, not allowed fast) go back to the picker.
  if (!msgs.empty()) send(std::move(msgs));
}

void peer_connection::update_interest() {
  if (closed_) return;
  const bool want = torrent_->picker().interesting(has_, has_.all());
  if (want == am_interested_) return;
  am_interested_ = want;
  std::string m;
  wire::put_simple(m, want ? wire::msg::interested : wire::msg::not_interested);
  send(std::move(m));
  if (want) fill_requests();
}

void peer_connection::choke(bool c) {
  if (closed_ || c == am_choking_) return;
  am_choking_ = c;
  std::string m;
  wire::put_simple(m, c ? wire::msg::choke : wire::msg::unchoke);
  if (c) {
    // Choke first, then reject what is queued (fast extension), so the peer re-requests elsewhere.
    if (fast_) {
      for (const auto& b : incoming_)
        wire::put_request(m, wire::msg::reject, b.piece, b.begin, b.length);
    }
    incoming_.clear();
  } else {
    last_unchoked_ = clock::now();
    choked_requests_ = 0;
  }
  send(std::move(m));
  if (!c) serve_requests();
}

void peer_connection::send_have(std::uint32_t piece) {
  if (closed_) return;
  std::string m;
  wire::put_have(m, piece);
  send(std::move(m));
  if (am_interested_) update_interest();
}

void peer_connection::remember_cancelled(const block_ref& b) {
  cancelled_.push_back(b);
  if (cancelled_.size() > max_cancelled) cancelled_.pop_front();
}

void peer_connection::cancel_block(const block_ref& b) {
  auto it = std::find(outstanding_.begin(), outstanding_.end(), b);
  if (it == outstanding_.end()) return;
  outstanding_.erase(it);
  remember_cancelled(b);
  torrent_->picker().abort_request(b);
  std::string m;
  wire::put_request(m, wire::msg::cancel, b.piece, b.begin, b.length);
  send(std::move(m));
}

void peer_connection::drop_requests() {
  if (!torrent_) return;
  for (const auto& b : outstanding_) {
    torrent_->picker().abort_request(b);
    remember_cancelled(b);
  }
  outstanding_.clear();
}

void peer_connection::send(std::string&& bytes) {
  if (closed_ || bytes.empty()) return;
  if (out_.empty()) {
    out_ = std::move(bytes);
  } else {
    out_.append(bytes);
  }
  flush_writes();
}

void peer_connection::flush_writes() {
  if (write_in_flight_ || out_.empty() || closed_) return;
  write_in_flight_ = true;
  asio::co_spawn(session_.io(), write_loop(shared_from_this()), asio::detached);
}

asio::awaitable<void> peer_connection::write_loop(std::shared_ptr<peer_connection> self) {
  // Drains out_ in batches: whatever queued while one write was in flight goes in the next.
  while (!self->out_.empty() && !self->closed_) {
    self->writing_.swap(self->out_);
    self->out_.clear();
    self->last_send_ = clock::now();
    auto [ec, n] = co_await self->stream_->write(asio::buffer(self->writing_));
    if (ec) {
      self->write_in_flight_ = false;
      self->close("send: " + ec.message());
      co_return;
    }
    // Piece payload bytes leave the backlog once written.
    std::uint64_t drained = std::min<std::uint64_t>(self->send_queued_bytes_, n);
    self->send_queued_bytes_ -= drained;
    self->writing_.clear();
    self->serve_requests();
  }
  self->write_in_flight_ = false;
}

}  // namespace shoal
