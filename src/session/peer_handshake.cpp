// peer_connection: the MSE/PE encryption handshake (either side, with the "preferred"
// fallback to plaintext), the BitTorrent handshake (BEP 3, with the BEP 52 upgrade of a
// hybrid to its v2 swarm), and what is sent right after it.
#include "net/encrypted_stream.hpp"

#include <algorithm>
#include <cstring>

#include "session/peer_connection.hpp"
#include "session/peer_internal.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"
#include "wire/metadata.hpp"
#include "wire/pex.hpp"

namespace shoal {

using namespace peer_detail;

namespace {
// How a peer that listens on TCP but takes no TCP peers answers: a reset or a close right
// after the connect, before any byte.
bool turned_away(const net::error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::eof || ec == asio::error::broken_pipe;
}
}  // namespace

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
  if (!session_.has_protocols()) {
    auto [ec, n] = co_await net::read_exact(*stream_, asio::buffer(first));
    if (ec || closed_) {
      close("handshake: " + (ec ? ec.message() : std::string("closed")));
      co_return false;
    }
  } else {
    // Another protocol shares the port: its magic may be shorter than what we read here,
    // and its client may wait for an answer after it, so read only until it is known.
    std::size_t have = 0;
    while (have < first.size()) {
      auto [ec, n] = co_await stream_->read_some(asio::buffer(first.data() + have, first.size() - have));
      if (ec || closed_) {
        close("handshake: " + (ec ? ec.message() : std::string("closed")));
        co_return false;
      }
      have += n;
      if (session_.protocol_for(std::string_view(first).substr(0, have))) break;
    }
    first.resize(have);
    if (const auto* proto = session_.protocol_for(first)) {
      auto st = std::move(stream_);
      close("handed to " + proto->name);
      if (proto->on_stream) proto->on_stream(std::move(st), std::move(first));
      co_return false;
    }
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

asio::awaitable<bool> peer_connection::mse_attempt(const sha1_digest& skey, std::uint32_t provide, std::string& why,
                                                   bool& timed_out) {
  // A peer that does not speak MSE may just wait for a plaintext handshake: give it a few
  // seconds, not the whole connect deadline. The timer's handler may run after this frame
  // is gone (it had fired as the handshake ended): it owns its state and reaches the
  // connection only through a weak reference.
  struct limit_state {
    bool timed_out = false;
    bool done = false;
  };
  auto ls = std::make_shared<limit_state>();
  asio::steady_timer limit(session_.io());
  limit.expires_after(session_.settings().encryption_timeout);
  limit.async_wait([ls, w = weak_from_this(), raw = stream_.get()](boost::system::error_code tec) {
    if (tec || ls->done) return;
    ls->timed_out = true;
    auto self = w.lock();
    if (self && self->stream_.get() == raw) raw->close();
  });
  const bool ok = co_await encryption_handshake(wire::mse::handshake::initiator(skey, provide), {}, why);
  ls->done = true;
  limit.cancel();
  timed_out = ls->timed_out;
  if (!ok && timed_out) why = "encryption handshake: no answer";
  co_return ok;
}

asio::awaitable<bool> peer_connection::offer_encryption(const tcp::endpoint& ep) {
  auto pol = session_.settings().encryption;
  if (!net::rc4_available() && pol == wire::mse::policy::preferred) pol = wire::mse::policy::allowed;
  // Half-open outgoing connections are bounded session-wide: wait for a free one.
  auto& lim = session_.limits();
  if (const std::uint32_t cap = session_.settings().max_half_open; cap > 0 && lim.half_open_outgoing >= cap) {
    asio::steady_timer wait(session_.io());
    while (lim.half_open_outgoing >= cap && !closed_) {
      wait.expires_after(std::chrono::milliseconds(50));
      co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (closed_) co_return false;
  }
  ++lim.half_open_outgoing;
  half_open_ = true;
  auto [ec, st] = co_await session_.connect_peer(ep);
  if (ec || closed_) {
    close(ec ? "connect: " + ec.message() : "closed");
    co_return false;
  }
  stream_ = std::move(st);
  if (pol == wire::mse::policy::allowed) co_return true;
  if (pol == wire::mse::policy::preferred && session_.plaintext_only(ep)) co_return true;
  const std::uint32_t provide = wire::mse::offer_for(pol);
  // BEP 52 over MSE: a responder finds the torrent by the key the MSE handshake was made
  // with and does not switch swarms after that (libtorrent ignores the upgrade bit on an
  // encrypted connection), so a hybrid dials its v2 swarm directly. A peer that knows
  // only the v1 info-hash refuses that key at once: then the v1 key, on a new connection.
  const bool hybrid = torrent_->v2_wire_hash() && torrent_->info().has_v1();
  std::string why;
  bool timed_out = false;
  for (int attempt = hybrid ? 0 : 1; attempt < 2; ++attempt) {
    dial_v2_ = attempt == 0;
    if (attempt == 1 && hybrid) {
      stream_->close();
      auto [ec1, st1] = co_await session_.connect_peer(ep);
      if (ec1 || closed_) {
        close(ec1 ? "connect: " + ec1.message() : "closed");
        co_return false;
      }
      stream_ = std::move(st1);
    }
    const sha1_digest skey = dial_v2_ ? *torrent_->v2_wire_hash() : torrent_->wire_hash();
    if (co_await mse_attempt(skey, provide, why, timed_out)) co_return true;
    // No answer: the peer does not speak MSE at all, another key will not help.
    if (timed_out || closed_) break;
  }
  dial_v2_ = false;
  if (pol == wire::mse::policy::required || closed_) {
    close(why);
    co_return false;
  }
  // "preferred": the peer may not speak MSE at all; dial again in plaintext.
  if (session_.settings().log) {
    log("peer " + ep_string(ep) + ": " + why + "; retrying in plaintext");
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
    ours.info_hash = dial_v2_ ? *torrent_->v2_wire_hash() : torrent_->wire_hash();
    dht_bit(ours);
    v2_bit(ours);
    const std::string out = wire::encode_handshake(ours);  // named: it must outlive the write
    auto [ec, n] = co_await stream_->write(asio::buffer(out));
    if (ec) {
      if (outgoing_ && turned_away(ec) && std::string_view(stream_->transport()) == "tcp") {
        session_.learned_tcp_refused(ep_);  // see below
      }
      close("handshake: " + ec.message());
      co_return false;
    }
  }
  const std::size_t had = std::min(handshake_prefix_.size(), in.size());
  std::memcpy(in.data(), handshake_prefix_.data(), had);
  handshake_prefix_.clear();
  auto [ec, n] = co_await net::read_exact(*stream_, asio::buffer(in.data() + had, in.size() - had));
  if (ec || closed_) {
    // Our plaintext handshake turned away over TCP before one byte came back (a reset or
    // a close; an encrypted offer may be refused that way by a plaintext-only peer, so only
    // this stage counts): the next dial tries uTP (transport "both", session::connect_peer).
    if (we_send_first && outgoing_ && had == 0 && n == 0 && turned_away(ec) &&
        std::string_view(stream_->transport()) == "tcp") {
      session_.learned_tcp_refused(ep_);
    }
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
      v2_ = torrent_->v2_only();
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
    v2_ = torrent_->v2_only();
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
  // A magnet's torrent without its metadata yet: this connection fetches only that.
  metadata_only_ = !torrent_->has_metadata();
  has_ = bitfield(metadata_only_ ? 0 : torrent_->num_pieces());
  interest_ = {};
  if (!torrent_->attach(shared_from_this())) {
    close("torrent refused the connection");
    return;
  }
  attached_ = true;
  attached_at_ = clock::now();
  if (session_.settings().log) {
    // A hybrid's incoming connection that came with the v1 hash and was moved to the v2
    // swarm by the upgrade bit (BEP 52) says so: tests tell it from a native v2 handshake.
    const bool upgraded = !outgoing_ && v2_ && torrent_->info().has_v1() && torrent_->v2_wire_hash() &&
                          their_hs_.info_hash != *torrent_->v2_wire_hash();
    log("peer " + ep_string(ep_) + " connected (" + (outgoing_ ? "outgoing" : "incoming") + ", " + transport() +
        (encrypted() ? ", rc4" : ", plaintext") + (v2_ && torrent_->info().has_v1() ? ", v2" : "") +
        (upgraded ? ", upgraded from v1" : "") + ")");
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
    if (!metadata_only_) e.metadata_size = torrent_->info().info_bytes.size();
    // BEP 27: private torrents learn peers from their trackers only.
    if (!torrent_->info().is_private) e.messages[std::string(wire::ut_pex)] = our_ut_pex;
    next_pex_ = clock::now() + first_pex_after;
    wire::put_extended(msgs, 0, wire::encode_ext_handshake(e));
  }
  if (their_hs_.dht() && session_.dht_node() && session_.dht_node()->running() && !torrent_->info().is_private) {
    wire::put_port(msgs, session_.dht_node()->port());
  }
  if (metadata_only_) {
    if (fast_) wire::put_simple(msgs, wire::msg::have_none);
    send(std::move(msgs));
    if (!extended_) close("metadata: the peer does not speak the extension protocol");
    return;
  }
  const bitfield& mine = torrent_->picker().have_bits();
  if (fast_ && mine.all()) {
    wire::put_simple(msgs, wire::msg::have_all);
  } else if (fast_ && mine.none()) {
    wire::put_simple(msgs, wire::msg::have_none);
  } else if (!mine.none()) {
    wire::put_bitfield(msgs, mine.bytes());
  }
  send(std::move(msgs));
}

}  // namespace shoal
