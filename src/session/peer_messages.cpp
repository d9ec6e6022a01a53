// peer_connection: the BEP 3 and BEP 6 messages, our requests (filling the queue, blocks
// that arrive, cancels) and the peer's (served from disk in runs, within the upload limit).
#include <algorithm>

#include "session/peer_connection.hpp"
#include "session/peer_internal.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"

namespace shoal {

using namespace peer_detail;

bool peer_connection::handle(const wire::message& m) {
  using wire::msg;
  if (metadata_only_) return handle_before_metadata(m);
  const std::uint32_t np = torrent_->num_pieces();
  // Fast-extension messages from a peer that did not offer the extension mean what they
  // say: taken as such (have all, have none, reject) or ignored (suggest, allowed fast).
  auto odd_fast = [&]() {
    if (!fast_) oddity(std::string(wire::msg_name(m.type)) + " without the fast extension");
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
        protocol_error("have for piece " + std::to_string(m.index) + " out of range");
        return false;
      }
      // A peer with nothing may skip the bitfield (BEP 3): after a have, one is too late.
      got_bitfield_ = true;
      if (!has_.get(m.index)) {
        has_.set(m.index);
        interest_.seen(m.index);
        torrent_->on_have(this, m.index);
      }
      return !closed_;
    case msg::bitfield: {
      bitfield b(np);
      if (!b.assign(m.payload)) {
        protocol_error("bitfield of " + std::to_string(m.payload.size()) + " bytes does not fit " + std::to_string(np) +
                       " pieces");
        return false;
      }
      if (got_bitfield_) {
        // aria2 sends its whole bitfield again, instead of haves, as it gets pieces: its
        // new pieces count as haves. A peer cannot lose pieces, so cleared bits are ignored.
        for (std::uint32_t i = 0; i < np && !closed_; ++i) {
          if (b.get(i) && !has_.get(i)) {
            has_.set(i);
            interest_.seen(i);
            torrent_->on_have(this, i);
          }
        }
        return !closed_;
      }
      has_ = std::move(b);
      interest_ = {};
      got_bitfield_ = true;
      counted_seed_ = has_.all();
      torrent_->picker().add_peer(has_, counted_seed_);
      update_interest();
      if (torrent_->fetching_layers()) torrent_->request_hashes(this);
      return !closed_;
    }
    case msg::have_all:
      odd_fast();
      if (got_bitfield_) {
        // aria2 again, once complete: the pieces it lacked count as haves.
        for (std::uint32_t i = 0; i < np && !closed_; ++i) {
          if (!has_.get(i)) {
            has_.set(i);
            interest_.seen(i);
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
      odd_fast();
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
      odd_fast();
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
      odd_fast();
      if (fast_ && m.index < np && allowed_fast_.size() < 64) allowed_fast_.push_back(m.index);
      return true;
    case msg::suggest:
      odd_fast();
      return true;
    case msg::port:
      on_port(m.port);
      return true;
    case msg::extended:
      handle_extended(m);
      return !closed_;
    case msg::hash_request:
      on_hash_request(m);
      return !closed_;
    case msg::hashes: {
      auto h = wire::decode_hashes(m.payload);
      if (!h) {
        protocol_error(h.err().message());
        return false;
      }
      torrent_->on_hashes(this, *h);
      return !closed_;
    }
    case msg::hash_reject: {
      auto r = wire::decode_hash_request(m.payload);
      if (!r) {
        protocol_error(r.err().message());
        return false;
      }
      torrent_->on_hash_reject(this, *r);
      return true;
    }
  }
  return true;
}

void peer_connection::on_port(std::uint16_t port) {
  // A DHT node at the peer's address: worth a ping into our routing table (BEP 5).
  if (port != 0 && session_.dht_node() && !torrent_->info().is_private) {
    session_.dht_node()->add_contact(dht::udp::endpoint(ep_.address(), port));
  }
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
    protocol_error("request out of range (piece " + std::to_string(m.index) + ", offset " + std::to_string(m.begin) +
                   ", length " + std::to_string(m.length) + ")");
    return;
  }
  if (am_choking_) {
    // Requests while choked: reject (fast) or ignore; a flood of them is abuse.
    if (++choked_requests_ > session_.settings().max_choked_requests) {
      ban("sent " + std::to_string(choked_requests_) + " requests while choked");
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
    ban("request queue over " + std::to_string(session_.settings().max_peer_requests));
    return;
  }
  incoming_.push_back(b);
  serve_requests();
}

void peer_connection::serve_requests() {
  while (!closed_ && !am_choking_ && !upload_paused_ && !incoming_.empty() && reads_in_flight_ < max_reads_in_flight &&
         send_queued_bytes_ < session_.send_share()) {
    // A run of requests contiguous in one piece is served by one disk read.
    auto run = std::make_shared<std::vector<block_ref>>();
    run->push_back(incoming_.front());
    incoming_.pop_front();
    std::uint32_t span = run->front().length;
    // Under an upload limit a run is at most one bucket (a tenth of a second's worth, at
    // least a block): it is taken from the limit when its read starts, so a bigger run
    // would go out as a burst.
    const std::uint64_t most =
        std::min<std::uint64_t>({max_read_span, session_.upload_limit().burst(), torrent_->upload_limit().burst()});
    while (!incoming_.empty() && incoming_.front().piece == run->front().piece &&
           incoming_.front().begin == run->back().begin + run->back().length &&
           span + incoming_.front().length <= most) {
      span += incoming_.front().length;
      run->push_back(incoming_.front());
      incoming_.pop_front();
    }
    ++reads_in_flight_;
    backlog_add(span);
    const auto wait = std::max(session_.upload_limit().consume(span), torrent_->upload_limit().consume(span));
    auto self = shared_from_this();
    torrent_->async_read_block(
        run->front().piece, run->front().begin, span,
        [self, run, span](std::error_code ec, std::string data) { self->on_blocks_read(*run, span, ec, data); });
    if (wait.count() > 0) {
      // Over the upload limit: this read goes, the next waits for the debt.
      upload_paused_ = true;
      auto t = std::make_shared<asio::steady_timer>(session_.io(), wait);
      t->async_wait([self, t](boost::system::error_code) {
        self->upload_paused_ = false;
        self->serve_requests();
      });
      return;
    }
  }
}

void peer_connection::on_blocks_read(const std::vector<block_ref>& run, std::uint32_t span, std::error_code ec,
                                     const std::string& data) {
  --reads_in_flight_;
  if (closed_) return;
  if (ec) {
    backlog_sub(span);
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
  send(std::move(msgs));
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
    if (fast_) protocol_error("sent a block that was never requested (piece " + std::to_string(m.index) + ")");
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
  // While a stream reads (time-critical pieces), a peer holds about a second of requests:
  // with deeper queues each peer fetches its own stretch far ahead of the reader, and the
  // bytes the reader waits for come at one peer's rate instead of all of theirs.
  const bool streaming = !torrent_->picker().critical().empty();
  const double seconds = streaming ? std::min(1.0, st.request_queue_seconds) : st.request_queue_seconds;
  auto depth = static_cast<std::uint32_t>(down_.rate() * seconds / per_block);
  depth = std::max(depth, streaming ? std::min<std::uint32_t>(4, st.min_request_queue) : st.min_request_queue);
  depth = std::min(depth, st.max_request_queue);
  depth = std::min(depth, ext_.reqq.value_or(default_peer_reqq));
  return depth;
}

void peer_connection::fill_requests() {
  if (closed_ || metadata_only_ || !am_interested_ || !got_bitfield_ || !torrent_->hashes_ready()) return;
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
  if (closed_ || metadata_only_) return;
  const bool want = torrent_->picker().interesting(has_, has_.all(), interest_);
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

}  // namespace shoal
