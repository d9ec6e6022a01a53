// peer_connection: lifetime (start, close, protocol errors and bans), the read loop that
// frames messages, the write path with its bounded queue, and the per-second timer.
#include "session/peer_connection.hpp"

#include <algorithm>
#include <cstring>

#include "session/peer_internal.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"

namespace shoal {

using namespace peer_detail;

peer_connection::peer_connection(session& s, std::unique_ptr<net::stream> st, bool outgoing)
    : session_(s), stream_(std::move(st)), outgoing_(outgoing), send_room_(s.io()), wake_(s.io()) {
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
  // Connections that have not handshaked are bounded session-wide: at the bound the oldest
  // goes (a real peer handshakes within milliseconds; a silent one waits for nothing).
  auto& lim = session_.limits();
  const std::uint32_t cap = session_.settings().max_unauthenticated;
  while (cap > 0 && lim.unauthenticated.size() >= cap) {
    auto oldest = lim.unauthenticated.front().conn.lock();
    lim.unauthenticated.pop_front();
    if (oldest) {
      oldest->pending_.reset();
      oldest->close("handshake: too many connections waiting for one (" + std::to_string(cap) + ")");
    }
  }
  pending_ = lim.unauthenticated.insert(lim.unauthenticated.end(), {weak_from_this(), clock::now()});
  asio::co_spawn(session_.io(), run(shared_from_this(), std::nullopt), asio::detached);
}

void peer_connection::unregister_pending() {
  if (!pending_) return;
  session_.limits().unauthenticated.erase(*pending_);
  pending_.reset();
}

void peer_connection::release_half_open() {
  if (!half_open_) return;
  half_open_ = false;
  --session_.limits().half_open_outgoing;
}

void peer_connection::close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = why;
  unregister_pending();
  release_half_open();
  if (session_.settings().log) {
    std::string totals;
    if (attached_) {
      totals = " (received " + std::to_string(down_.total()) + " B, sent " + std::to_string(up_.total()) + " B)";
    }
    log("peer " + ep_string(ep_) + " closed: " + why + totals);
  }
  if (stream_) stream_->close();
  wake_.cancel();
  send_room_.cancel();
  drop_requests();
  if (torrent_ && attached_) {
    attached_ = false;
    torrent_->detach(this);
  }
  // Nothing more will be sent: the queue's memory goes now, not when the last coroutine ends.
  std::string().swap(out_);
  backlog_sub(send_queued_bytes_);
}

void peer_connection::backlog_add(std::uint64_t n) {
  send_queued_bytes_ += n;
  session_.send_backlog_add(n);
}

void peer_connection::backlog_sub(std::uint64_t n) {
  n = std::min(n, send_queued_bytes_);
  send_queued_bytes_ -= n;
  session_.send_backlog_sub(n);
}

void peer_connection::protocol_error(const std::string& why) {
  if (closed_) return;
  if (torrent_ && outgoing_) torrent_->penalize(ep_);
  close(why);
}

void peer_connection::ban(const std::string& why) {
  // Corrupt data or abuse: not worth reconnecting to.
  if (torrent_ && !closed_) torrent_->ban(this, why);
  close(why);
}

void peer_connection::log(const std::string& line) const {
  if (!session_.settings().log) return;
  if (torrent_) {
    torrent_->log(line);
  } else {
    session_.settings().log(line);
  }
}

void peer_connection::oddity(const std::string& what) {
  if (session_.settings().log) log("peer " + ep_string(ep_) + ": ignored " + what);
}

bool peer_connection::evictable(clock::time_point now, clock::duration idle) const {
  return attached_ && !closed_ && now - attached_at_ >= idle && down_.total() == 0 && up_.total() == 0 &&
         !peer_interested_ && !am_interested_ && outstanding_.empty() && incoming_.empty();
}

asio::awaitable<void> peer_connection::run(std::shared_ptr<peer_connection> self,
                                           std::optional<tcp::endpoint> connect_to) {
  // One deadline covers connecting and the handshake. The handler owns what it touches.
  asio::steady_timer guard(self->session_.io());
  guard.expires_after(self->session_.settings().connect_timeout);
  const char* what = connect_to ? "connect timeout" : "handshake timeout";
  guard.async_wait([self, what](boost::system::error_code ec) {
    if (!ec && !self->attached_) self->close(what);
  });
  bool ok = connect_to ? co_await self->offer_encryption(*connect_to) : co_await self->accept_encryption();
  if (ok) ok = co_await self->exchange_handshake(connect_to.has_value());
  guard.cancel();
  self->release_half_open();
  if (!ok || self->closed_) {
    self->close("handshake failed");
    co_return;
  }
  self->unregister_pending();
  self->after_handshake();
  if (self->closed_) co_return;
  asio::co_spawn(self->session_.io(), timer_loop(self), asio::detached);
  co_await self->read_loop();
}

bool peer_connection::send_full() const {
  return send_queued() >= session_.settings().max_send_queue;
}

asio::awaitable<void> peer_connection::wait_send_room() {
  // Woken by write_loop once the queue is under its bound, or by close.
  send_room_.expires_at(clock::time_point::max());
  co_await send_room_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void peer_connection::make_read_room(std::size_t need) {
  if (rbegin_ + need <= rbuf_.size()) return;
  if (rbegin_ > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + rbegin_, rend_ - rbegin_);
    rend_ -= rbegin_;
    rbegin_ = 0;
  }
  if (need > rbuf_.size()) {
    rbuf_.resize(std::min(max_read_buffer, std::max(need, rbuf_.size() * 2)));
    rbuf_grown_ = clock::now();
  }
}

asio::awaitable<void> peer_connection::read_loop() {
  auto self = shared_from_this();
  asio::steady_timer pause(session_.io());
  rbuf_.resize(initial_read_buffer);
  rbuf_grown_ = clock::now();
  while (!closed_) {
    // Frame and handle every complete message in the buffer. While the peer's send queue
    // is at its bound, no more of its messages are handled (and no replies made).
    while (!closed_) {
      if (send_full()) {
        co_await wait_send_room();
        continue;
      }
      std::string_view avail(rbuf_.data() + rbegin_, rend_ - rbegin_);
      auto len = wire::peek_length(avail);
      if (!len) break;
      if (*len > wire::max_message_size) {
        protocol_error("message of " + std::to_string(*len) + " bytes exceeds the limit");
        co_return;
      }
      if (avail.size() < 4 + *len) {
        make_read_room(4 + *len);
        break;
      }
      auto m = wire::decode_message(avail.substr(4, *len));
      rbegin_ += 4 + *len;
      if (!m) {
        // A message type we do not know is an extension we did not negotiate: skip it.
        const auto type = static_cast<wire::msg>(static_cast<unsigned char>(avail[4]));
        if (std::string_view(wire::msg_name(type)) == "unknown") {
          oddity("message of unknown type " + std::to_string(static_cast<unsigned>(type)));
          continue;
        }
        protocol_error(m.err().message());
        co_return;
      }
      if (!handle(*m)) co_return;
    }
    if (closed_) co_return;
    if (rbegin_ == rend_) {
      rbegin_ = rend_ = 0;
      if (rbuf_.size() > initial_read_buffer && clock::now() - rbuf_grown_ > read_buffer_shrink_after) {
        std::vector<char>(initial_read_buffer).swap(rbuf_);
      }
    }
    // Back-pressure: the disk is behind, so stop taking data from the network.
    while (torrent_->disk_backlogged() && !closed_) {
      pause.expires_after(std::chrono::milliseconds(5));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (rend_ == rbuf_.size()) make_read_room(rend_ - rbegin_ + 1);
    const std::size_t room = rbuf_.size() - rend_;
    // Under a download limit a read takes at most one bucket (a tenth of a second's worth,
    // at least a block): bytes leave the socket at the limited rate, not in bursts the
    // wait afterwards pays for.
    const std::uint64_t cap = std::min(session_.download_limit().burst(), torrent_->download_limit().burst());
    const std::size_t space = static_cast<std::size_t>(std::min<std::uint64_t>(room, cap));
    auto [ec, n] = co_await stream_->read_some(asio::buffer(rbuf_.data() + rend_, space));
    if (ec || closed_) {
      close(ec ? ec.message() : "closed");
      co_return;
    }
    rend_ += n;
    last_recv_ = clock::now();
    // A read that filled the buffer: the peer sends fast, so read more per call.
    if (n == room && rbuf_.size() < max_read_buffer) {
      rbuf_.resize(std::min(max_read_buffer, rbuf_.size() * 2));
      rbuf_grown_ = last_recv_;
    }
    // Global download limit: wait out the debt before reading more.
    // Global and per-torrent download limits: the longer wait wins (both are charged).
    auto wait = std::max(session_.download_limit().consume(n), torrent_->download_limit().consume(n));
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
    if (metadata_only_ && now - (md_ ? md_->last : attached_at_) > metadata_answer_timeout) {
      torrent_->metadata_peer_failed(ep_, "no metadata within 30 s");
      torrent_->penalize(ep_);
      close("metadata: nothing within 30 s");
      co_return;
    }
    if (now - last_recv_ > st.peer_timeout) {
      close("timed out: nothing received for " + std::to_string(st.peer_timeout.count()) + " s");
      co_return;
    }
    if (send_full() && send_full_since_ != clock::time_point{} && now - send_full_since_ > st.send_queue_stall) {
      protocol_error("send queue full for " + std::to_string(st.send_queue_stall.count()) +
                     " s (the peer does not read)");
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

void peer_connection::send(std::string&& bytes) {
  if (closed_ || bytes.empty()) return;
  if (out_.empty()) {
    out_ = std::move(bytes);
  } else {
    out_.append(bytes);
  }
  if (send_full()) {
    if (send_full_since_ == clock::time_point{}) send_full_since_ = clock::now();
    // Replies stop at the bound (the read loop waits); what still comes (haves, say) is
    // small, but never unbounded.
    if (send_queued() > 2 * session_.settings().max_send_queue + max_read_buffer) {
      protocol_error("send queue over " + std::to_string(send_queued()) + " bytes (the peer does not read)");
      return;
    }
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
    self->backlog_sub(n);
    // A big batch's memory is not kept for the small messages that follow.
    if (self->writing_.capacity() > initial_read_buffer) {
      std::string().swap(self->writing_);
    } else {
      self->writing_.clear();
    }
    if (!self->send_full()) {
      self->send_full_since_ = {};
      self->send_room_.cancel();
    }
    self->serve_requests();
  }
  self->write_in_flight_ = false;
}

}  // namespace shoal
