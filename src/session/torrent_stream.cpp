// Streaming: readers of a torrent's file. Each reader's position makes pieces
// time-critical for the picker (piece_picker::set_critical): the piece under every reader
// first, then the first piece of the files being read, the first 2 MiB past each reader,
// the last 256 KiB of the files (containers keep their index there), then the rest of each
// reader's readahead window, nearest first. A read waits for its
// piece to be verified and written, then reads it from the disk like an upload does.
#include <algorithm>

#include "session/peer_connection.hpp"
#include "session/session.hpp"
#include "session/torrent.hpp"

namespace shoal {

namespace {
// The tail a container keeps its index in (an MP4's moov atom, Matroska's cues).
constexpr std::uint64_t stream_tail_bytes = 256u << 10;
// The stretch past a reader fetched before the file's tail: playback's first seconds.
constexpr std::uint64_t stream_near_bytes = 2u << 20;
}  // namespace

std::uint64_t torrent::open_reader(std::uint32_t f) {
  if (!fs_ || !picker_ || f >= fs_->files().size() || fs_->files()[f].pad) return 0;
  if (readers_.view().size() >= max_stream_readers) return 0;
  if (!file_prio_.empty() && file_prio_[f] == 0) {
    auto prio = file_prio_;
    prio[f] = 1;
    set_file_priorities(std::move(prio));
  }
  const std::uint64_t id = next_reader_++;
  stream_reader r;
  r.file = f;
  r.pos = fs_->files()[f].offset;
  r.since = std::chrono::steady_clock::now();
  r.moved = id;
  readers_->emplace(id, r);
  log("stream: reader " + std::to_string(id) + " of " + file_name(f) + " opened");
  update_critical(true);
  for (auto& p : std::vector(peers_))
    p->fill_requests();
  return id;
}

void torrent::close_reader(std::uint64_t id) {
  auto* rs = readers_.get();
  if (rs == nullptr || rs->erase(id) == 0) return;
  log("stream: reader " + std::to_string(id) + " closed");
  if (auto* w = stream_waits_.get()) {
    std::vector<stream_wait> gone;
    for (auto it = w->begin(); it != w->end();) {
      if (it->reader == id) {
        gone.push_back(std::move(*it));
        it = w->erase(it);
      } else {
        ++it;
      }
    }
    for (auto& g : gone)
      g.done(std::make_error_code(std::errc::operation_canceled), {});
  }
  // With readers left (a player that sought away from this one), the requests for this
  // reader's window go back so the peers serve theirs; with none, the download goes on.
  const bool others = !rs->empty();
  update_critical(others);
  if (others) {
    for (auto& p : std::vector(peers_))
      p->fill_requests();
  }
}

std::uint64_t torrent::stream_window(const stream_reader& r) const {
  // Thirty seconds at the rate it is read, within bounds; at least two pieces.
  const auto by_rate = static_cast<std::uint64_t>(r.rate * 30);
  const std::uint64_t pl = fs_->piece_length();
  return std::max(std::clamp(by_rate, stream_min_window, stream_max_window), 2 * pl);
}

void torrent::update_critical(bool seek) {
  if (!picker_ || !fs_) return;
  // The reader that opened or sought last goes first everywhere: it is what a player waits
  // for now (the reader it sought away from may not be closed yet).
  std::vector<const stream_reader*> rs;
  for (const auto& [id, r] : readers_.view())
    rs.push_back(&r);
  std::sort(rs.begin(), rs.end(), [](const auto* a, const auto* b) { return a->moved > b->moved; });
  const std::uint64_t pl = fs_->piece_length();
  std::vector<std::uint32_t> crit;
  auto piece_at = [&](std::uint64_t abs) { return static_cast<std::uint32_t>(abs / pl); };
  auto file_end = [&](const stream_reader& r) {
    const auto& fe = fs_->files()[r.file];
    return fe.offset + fe.size;
  };
  // 1. The piece under each reader.
  for (const auto* r : rs) {
    if (r->pos < file_end(*r)) crit.push_back(piece_at(r->pos));
  }
  // 2. The first piece of each file read.
  for (const auto* r : rs) {
    const auto& fe = fs_->files()[r->file];
    if (fe.size != 0) crit.push_back(piece_at(fe.offset));
  }
  // The readahead windows from `from` to `to` bytes past each reader, nearest pieces first,
  // the readers taking turns.
  auto add_windows = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t d = from; d <= to && crit.size() < piece_picker::max_critical; d += pl) {
      for (const auto* r : rs) {
        if (d > stream_window(*r)) continue;
        const std::uint64_t at = r->pos + d;
        if (at < file_end(*r)) crit.push_back(piece_at(at));
      }
    }
  };
  std::uint64_t widest = 0;
  for (const auto* r : rs)
    widest = std::max(widest, stream_window(*r));
  // 3. The first stretch of each window: what playback needs in its first seconds.
  const std::uint64_t near = std::max<std::uint64_t>(stream_near_bytes / pl, 1) * pl;
  add_windows(pl, std::min(near, widest));
  // 4. The last 256 KiB of each file read (an MP4's moov atom, Matroska's cues).
  for (const auto* r : rs) {
    const auto& fe = fs_->files()[r->file];
    if (fe.size == 0) continue;
    const std::uint64_t tail = fe.size > stream_tail_bytes ? fe.offset + fe.size - stream_tail_bytes : fe.offset;
    for (std::uint32_t p = piece_at(tail); p <= piece_at(fe.offset + fe.size - 1); ++p)
      crit.push_back(p);
  }
  // 5. The rest of the windows.
  add_windows(std::min(near, widest) + pl, widest);
  picker_->set_critical(std::move(crit));
  if (!seek || rs.empty()) return;
  // A new reader or a seek: every request but those for the newest reader's piece and the
  // first 2 MiB past it goes back (an old window's, the other readers', rarest-first ones),
  // so the peers' queues serve the new position first instead of a second or more of other
  // data; what is still critical is asked again right after, behind it.
  const auto* newest = rs.front();
  const std::uint64_t keep_end = std::min(newest->pos + near, file_end(*newest));
  auto wanted_now = [&](std::uint32_t piece) {
    const std::uint64_t at = std::uint64_t{piece} * pl;
    return at + pl > newest->pos && at < keep_end;
  };
  const auto& now_critical = picker_->critical();
  std::size_t cancelled = 0;
  for (auto& p : std::vector(peers_)) {
    std::vector<block_ref> cancel;
    for (const auto& b : p->requested()) {
      if (!wanted_now(b.piece)) cancel.push_back(b);
    }
    for (const auto& b : cancel)
      p->cancel_block(b);
    cancelled += cancel.size();
  }
  log("stream: reading at piece " + std::to_string(now_critical.empty() ? 0 : now_critical.front()) + ", " +
      std::to_string(cancelled) + " requests for other pieces cancelled");
}

void torrent::stream_read(std::uint64_t id, std::uint64_t offset, std::size_t max,
                          std::function<void(std::error_code, std::string)> done) {
  auto* rs = readers_.get();
  auto it = rs ? rs->find(id) : decltype(rs->end()){};
  if (rs == nullptr || it == rs->end() || !fs_) {
    done(std::make_error_code(std::errc::bad_file_descriptor), {});
    return;
  }
  if (state_ == torrent_state::error) {
    done(std::make_error_code(std::errc::io_error), {});
    return;
  }
  stream_reader& r = it->second;
  const auto& fe = fs_->files()[r.file];
  if (offset >= fe.size || max == 0) {
    done({}, {});
    return;
  }
  const std::uint64_t pl = fs_->piece_length();
  const std::uint64_t abs = fe.offset + offset;
  const auto piece = static_cast<std::uint32_t>(abs / pl);
  const auto begin = static_cast<std::uint32_t>(abs % pl);
  const std::uint64_t in_piece = fs_->piece_size(piece) > begin ? fs_->piece_size(piece) - begin : 0;
  const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>({max, fe.size - offset, in_piece}));
  if (length == 0) {
    done({}, {});
    return;
  }
  // Move the reader; a jump outside [pos - one piece, pos + window] is a seek (reads that
  // follow one another land one read further on).
  const auto now = std::chrono::steady_clock::now();
  const bool seek = abs + pl < r.pos || abs > r.pos + stream_window(r);
  if (seek) {
    r.bytes = 0;
    r.since = now;
    r.moved = next_reader_++;  // the same count as ids: a seek is newer than every open before it
  } else {
    r.bytes += length;
    const double secs = std::chrono::duration<double>(now - r.since).count();
    if (secs >= 2.0) {
      const double inst = static_cast<double>(r.bytes) / secs;
      r.rate = r.rate == 0 ? inst : 0.7 * r.rate + 0.3 * inst;
      r.bytes = 0;
      r.since = now;
    }
  }
  // The reader is where it reads now: the piece this read waits for is the most urgent.
  const std::uint64_t old_piece = r.pos / pl;
  r.pos = abs;
  if (seek || r.pos / pl != old_piece || picker_->critical().empty()) {
    update_critical(seek);
    for (auto& p : std::vector(peers_))
      p->fill_requests();
  }
  if (picker_->have(piece)) {
    async_read_block(piece, begin, length, std::move(done));
    return;
  }
  if (stream_waits_.view().size() >= max_stream_waits) {
    done(std::make_error_code(std::errc::resource_unavailable_try_again), {});
    return;
  }
  stream_waits_->push_back({id, piece, begin, length, std::move(done)});
}

void torrent::stream_piece_ready(std::uint32_t piece) {
  auto* w = stream_waits_.get();
  if (w != nullptr && !w->empty()) {
    std::vector<stream_wait> ready;
    for (auto it = w->begin(); it != w->end();) {
      if (it->piece == piece) {
        ready.push_back(std::move(*it));
        it = w->erase(it);
      } else {
        ++it;
      }
    }
    for (auto& s : ready)
      async_read_block(s.piece, s.begin, s.length, std::move(s.done));
  }
  if (picker_ && picker_->is_critical(piece)) update_critical();
}

void torrent::fail_stream_waits(std::error_code ec) {
  auto* w = stream_waits_.get();
  if (w == nullptr || w->empty()) return;
  auto all = std::move(*w);
  w->clear();
  for (auto& s : all)
    s.done(ec, {});
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> torrent::have_ranges(std::uint32_t f) const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  if (!fs_ || !picker_ || f >= fs_->files().size()) return out;
  const auto& fe = fs_->files()[f];
  if (fe.size == 0) return out;
  const std::uint64_t pl = fs_->piece_length();
  const auto [first, last] = fs_->file_pieces(f);
  for (std::uint32_t p = first; p < last; ++p) {
    if (!picker_->have(p)) continue;
    const std::uint64_t a = std::max<std::uint64_t>(static_cast<std::uint64_t>(p) * pl, fe.offset) - fe.offset;
    const std::uint64_t b =
        std::min<std::uint64_t>(static_cast<std::uint64_t>(p) * pl + fs_->piece_size(p), fe.offset + fe.size) -
        fe.offset;
    if (!out.empty() && out.back().second == a) {
      out.back().second = b;
    } else {
      out.emplace_back(a, b);
    }
  }
  return out;
}

}  // namespace shoal
