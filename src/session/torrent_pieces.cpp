// A torrent's pieces: blocks from peers and web seeds into piece buffers, the hash check
// (with smart ban), writes, flushes and the resume data that records what is safe.
#include <cstring>

#include "session/peer_connection.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"
#include "storage/resume.hpp"

namespace shoal {

namespace {
using clock = std::chrono::steady_clock;
}  // namespace

void torrent::on_block(peer_connection* from, std::uint32_t piece, std::uint32_t begin, std::string_view data) {
  receive_block(from, from->endpoint(), piece, begin, data);
}

void torrent::on_web_block(const tcp::endpoint& from, std::uint32_t piece, std::uint32_t begin, std::string_view data) {
  receive_block(nullptr, from, piece, begin, data);
}

void torrent::receive_block(peer_connection* from, const tcp::endpoint& from_ep, std::uint32_t piece,
                            std::uint32_t begin, std::string_view data) {
  downloaded_ += data.size();
  download_meter_.add(data.size());
  const block_ref b{piece, begin, static_cast<std::uint32_t>(data.size())};
  if (picker_->have(piece) || !picker_->mark_received(b)) {
    wasted_ += data.size();
    return;
  }
  auto& buf = buffers_[piece];
  if (!buf) {
    buf = std::make_shared<piece_buffer>();
    buf->size = fs_->piece_size(piece);
    buf->bytes =
        has_pad_files_ ? std::make_unique<char[]>(buf->size) : std::make_unique_for_overwrite<char[]>(buf->size);
    const std::size_t nb = (buf->size + piece_picker::block_size - 1) / piece_picker::block_size;
    buf->senders.assign(nb, nullptr);
    buf->sender_eps.assign(nb, tcp::endpoint{});
  }
  if (begin + data.size() > buf->size) {
    wasted_ += data.size();
    return;
  }
  std::memcpy(buf->bytes.get() + begin, data.data(), data.size());
  buf->senders[begin / piece_picker::block_size] = from;
  buf->sender_eps[begin / piece_picker::block_size] = from_ep;
  // End game: others may still be fetching this block.
  if (picker_->in_end_game()) {
    for (auto& p : peers_) {
      if (p.get() != from) p->cancel_block(b);
    }
  }
  if (picker_->piece_received(piece)) hash_and_write(piece);
}

void torrent::hash_and_write(std::uint32_t piece) {
  auto it = buffers_->find(piece);
  if (it == buffers_->end()) return;
  auto buf = it->second;
  buffers_->erase(it);
  disk_queue_bytes_ += buf->size;
  auto self = shared_from_this();
  session_.hash_pool().post([self, piece, buf, layer = layer_hash(piece)] {
    const bool ok = self->verify_piece(piece, buf->data(), layer);
    asio::post(self->session_.io(), [self, piece, ok, buf] { self->on_piece_hashed(piece, ok, buf); });
  });
}

void torrent::on_piece_hashed(std::uint32_t piece, bool ok, std::shared_ptr<piece_buffer> buf) {
  if (!ok) {
    disk_queue_bytes_ -= buf->size;
    ++hash_failures_;
    wasted_ += buf->size;
    picker_->piece_failed(piece);
    // Smart ban: one sender is the liar; several: remember each block for the re-download.
    std::set<tcp::endpoint> senders(buf->sender_eps.begin(), buf->sender_eps.end());
    senders.erase(tcp::endpoint{});
    if (senders.size() == 1 && blame_web_seed(*senders.begin(), piece)) {
      // A web seed: counted there, dropped after a few.
    } else if (senders.size() == 1) {
      const tcp::endpoint liar = *senders.begin();
      for (auto& p : peers_) {
        if (p->endpoint() == liar) {
          ban(p.get(), "sent data that failed the hash check of piece " + std::to_string(piece));
          break;
        }
      }
      banned_->insert(liar);
    } else {
      if (info_.has_v2()) start_leaf_check(piece, *buf);
      auto& rec = suspects_[piece];
      for (std::size_t i = 0; i < buf->sender_eps.size(); ++i) {
        if (buf->sender_eps[i] == tcp::endpoint{}) continue;
        const std::size_t off = i * piece_picker::block_size;
        rec.push_back({buf->sender_eps[i], static_cast<std::uint32_t>(i),
                       sha1(buf->data().substr(off, piece_picker::block_size))});
      }
    }
    for (auto& p : peers_)
      p->fill_requests();
    return;
  }
  // suspects_.view() first: a piece that passes allocates no table.
  if (suspects_.view().count(piece) != 0) {
    // The good copy is known now: whoever sent a different block lied.
    auto s = suspects_->find(piece);
    for (const auto& [ep, blk, h] : s->second) {
      const std::size_t off = static_cast<std::size_t>(blk) * piece_picker::block_size;
      if (sha1(buf->data().substr(off, piece_picker::block_size)) != h) {
        if (blame_web_seed(ep, piece)) continue;
        banned_->insert(ep);
        for (auto& p : peers_) {
          if (p->endpoint() == ep) {
            ban(p.get(), "smart ban: its block of piece " + std::to_string(piece) + " was corrupt");
            break;
          }
        }
      }
    }
    suspects_->erase(s);
  }
  auto self = shared_from_this();
  session_.disk_pool().post([self, piece, buf] {
    auto ec = self->disk_->write(piece, 0, buf->data());
    asio::post(self->session_.io(), [self, piece, ec, n = buf->size] { self->on_piece_written(piece, ec, n); });
  });
}

void torrent::on_piece_written(std::uint32_t piece, std::error_code ec, std::size_t bytes) {
  disk_queue_bytes_ -= bytes;
  if (ec) {
    picker_->piece_failed(piece);
    std::vector<file_slice> sl;
    fs_->map(piece, 0, fs_->piece_size(piece), sl);
    const std::string where = sl.empty() ? std::string("piece ") + std::to_string(piece) : file_name(sl[0].file);
    fail("cannot write " + where + ": " + ec.message());
    return;
  }
  const bool counted = !picker_->have(piece) && picker_->priority(piece) > 0;
  picker_->piece_passed(piece);
  if (counted) have_wanted_ += payload_size(piece);
  post_event(static_cast<int>(event_kind::piece_finished), {}, piece);
  stream_piece_ready(piece);
  if (!file_pieces_left_.empty()) {
    std::vector<file_slice> sl;
    fs_->map(piece, 0, fs_->piece_size(piece), sl);
    for (const auto& s : sl) {
      if (file_pieces_left_[s.file] > 0 && --file_pieces_left_[s.file] == 0) {
        post_event(static_cast<int>(event_kind::file_completed), file_name(s.file), s.file);
      }
    }
  }
  unflushed_.push_back(piece);
  unflushed_bytes_ += bytes;
  if (unflushed_bytes_ >= session_.settings().flush_bytes && state_ == torrent_state::downloading) do_flush({});
  for (auto& p : peers_)
    p->send_have(piece);
  maybe_finished();
}

void torrent::maybe_finished() {
  if (state_ != torrent_state::downloading || !picker_->wanted_complete()) return;
  auto self = shared_from_this();
  const auto gen = run_gen_;
  // Finished means verified AND flushed: then a crash cannot lose it. Empty files are
  // created on the disk pool.
  do_flush([self, gen] {
    self->session_.disk_pool().post([self, gen] {
      auto ec = self->disk_->create_empty_files();
      asio::post(self->session_.io(), [self, gen, ec] {
        if (gen != self->run_gen_ || self->state_ != torrent_state::downloading || !self->picker_->wanted_complete())
          return;
        if (ec) {
          self->fail("cannot create empty files: " + ec.message());
          return;
        }
        self->completed_time_ =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        self->set_state(torrent_state::seeding);
        self->stop_web_seeds();
        self->completed_pending_ = true;
        self->announce_timer_.cancel();
        // Closing detaches, which edits peers_: walk a copy.
        for (auto& p : std::vector(self->peers_)) {
          if (p->is_seed() || p->upload_only()) p->close("both complete");
        }
        self->run_choker();
        if (!self->finished_fired_) {
          self->finished_fired_ = true;
          self->post_event(static_cast<int>(event_kind::torrent_finished));
        }
        self->save_resume();
        self->session_.queue_changed();  // from a download slot to a seed slot
        self->check_goals();
      });
    });
  });
}

void torrent::do_flush(std::function<void()> then) {
  last_flush_ = clock::now();
  auto pieces = std::make_shared<std::vector<std::uint32_t>>(std::move(unflushed_));
  unflushed_.clear();
  unflushed_bytes_ = 0;
  auto self = shared_from_this();
  // On the hash pool, so that writes on the disk pool are not held up by fdatasync.
  session_.hash_pool().post([self, pieces, then = std::move(then)]() mutable {
    auto ec = self->disk_->flush();
    asio::post(self->session_.io(), [self, pieces, ec, then = std::move(then)] {
      if (ec) {
        self->fail("cannot flush data to disk: " + ec.message());
        // Callers still go on (stop must finish); they see the error state.
        if (then) then();
        return;
      }
      for (auto p : *pieces)
        self->flushed_.set(p);
      self->save_resume();
      if (then) then();
    });
  });
}

void torrent::save_resume() {
  if (resume_file_.empty() || !fs_) return;
  if (!loaded_) {
    save_after_load_ = true;  // on_resume_loaded makes it, with the pieces it read
    return;
  }
  resume_data r;
  r.info_hash =
      info_.info_hash_v1 ? std::string(as_view(*info_.info_hash_v1)) : std::string(as_view(*info_.info_hash_v2));
  r.pieces = flushed_;
  r.downloaded = total_downloaded();
  r.uploaded = total_uploaded();
  r.paused = user_paused_;
  r.file_priorities = file_prio_;
  r.sequential = sequential_;
  r.max_download_rate = down_limit_.rate();
  r.max_upload_rate = up_limit_.rate();
  r.goal_ratio = goals_.ratio;
  if (goals_.seeding_time) r.goal_seeding_time = goals_.seeding_time->count();
  if (goals_.idle_time) r.goal_idle_time = goals_.idle_time->count();
  r.queue_position = queue_key_;
  r.added_time = added_time_;
  r.completed_time = completed_time_;
  r.seeding_seconds = seeding_seconds_;
  r.active_seconds = active_seconds_;
  r.save_path = save_path_.string();
  r.labels = labels_;
  r.renamed = renamed_.view();
  r.name = display_name_;
  std::vector<std::filesystem::path> paths;
  paths.reserve(fs_->files().size());
  for (std::uint32_t f = 0; f < fs_->files().size(); ++f)
    paths.push_back(disk_->file_path(f));
  auto self = shared_from_this();
  // The write is atomic; it runs on the disk pool, after the flush that justified it, and
  // records each file's size and mtime as they are then (writes before it are done: the
  // pool runs jobs in order).
  session_.disk_pool().post([self, r = std::move(r), paths = std::move(paths)]() mutable {
    r.files = stamp_files(paths);
    auto ec = save_resume_file(self->resume_file_, encode_resume(r));
    if (ec) {
      asio::post(self->session_.io(), [self, ec] {
        self->post_event(static_cast<int>(event_kind::error), "cannot save resume data: " + ec.message());
        if (self->session_.settings().log) self->log("cannot save resume data: " + ec.message());
      });
    }
  });
}

std::uint64_t torrent::served_piece_size(std::uint32_t piece) const {
  // libtorrent pads every file of a v2-only torrent to a whole piece (the last one too), so
  // it asks for full blocks of a file's last piece: the bytes past the file read as zeros.
  if (!info_.has_v1()) return info_.piece_length;
  return fs_->piece_size(piece);
}

void torrent::async_read_block(std::uint32_t piece, std::uint32_t begin, std::uint32_t length,
                               std::function<void(std::error_code, std::string)> done) {
  auto self = shared_from_this();
  // Past the end of a piece's data (a v2 file's padded last piece, see served_piece_size)
  // the bytes are zeros.
  const std::uint64_t real = fs_->piece_size(piece);
  const auto n = static_cast<std::uint32_t>(begin >= real ? 0 : std::min<std::uint64_t>(length, real - begin));
  session_.disk_pool().post([self, piece, begin, length, n, done = std::move(done)]() mutable {
    std::string data(length, '\0');
    auto ec = n ? self->disk_->read(piece, begin, n, data.data()) : std::error_code{};
    asio::post(self->session_.io(),
               [ec, data = std::move(data), done = std::move(done)]() mutable { done(ec, std::move(data)); });
  });
}

void torrent::fail(const std::string& why, error_kind kind) {
  if (state_ == torrent_state::error) return;
  fail_stream_waits(std::make_error_code(std::errc::io_error));
  error_ = why;
  error_kind_ = kind;
  active_ = false;
  ++run_gen_;
  ++check_gen_;
  announce_timer_.cancel();
  stop_web_seeds();
  for (auto& p : std::vector(peers_))
    p->close("torrent stopped: " + why);
  set_state(torrent_state::error);
  post_event(static_cast<int>(event_kind::error), why);
  if (session_.settings().log) log("error: " + info_.name + ": " + why);
  session_.queue_changed();
}

}  // namespace shoal
