// A torrent's life: resume data or a check, the queue, running and winding down, and every
// change a user makes at runtime (pause, resume, recheck, priorities, limits, goals, labels).
#include "session/torrent.hpp"

#include <algorithm>
#include <random>

#include "core/text.hpp"
#include "session/peer_connection.hpp"
#include "session/session.hpp"
#include "session/web_seed.hpp"
#include "storage/resume.hpp"
#include "tracker/client.hpp"

namespace shoal {

namespace {
using clock = std::chrono::steady_clock;
constexpr int choke_every_ticks = 10;

sha1_digest truncate(const sha256_digest& h) {
  sha1_digest d{};
  std::copy_n(h.begin(), 20, d.begin());
  return d;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string_view state_name(torrent_state s) {
  switch (s) {
    case torrent_state::queued:
      return "queued";
    case torrent_state::checking:
      return "checking";
    case torrent_state::fetching_metadata:
      return "fetching metadata";
    case torrent_state::downloading:
      return "downloading";
    case torrent_state::seeding:
      return "seeding";
    case torrent_state::paused:
      return "paused";
    case torrent_state::error:
      return "error";
    case torrent_state::stopped:
      return "stopped";
  }
  return "?";
}

const char* event_kind_name(event_kind k) {
  switch (k) {
    case event_kind::added:
      return "added";
    case event_kind::metadata_received:
      return "metadata_received";
    case event_kind::state_changed:
      return "state_changed";
    case event_kind::piece_finished:
      return "piece_finished";
    case event_kind::file_completed:
      return "file_completed";
    case event_kind::torrent_finished:
      return "torrent_finished";
    case event_kind::error:
      return "error";
    case event_kind::tracker_reply:
      return "tracker_reply";
    case event_kind::peer_banned:
      return "peer_banned";
    case event_kind::storage_moved:
      return "storage_moved";
    case event_kind::removed:
      return "removed";
    case event_kind::goal_reached:
      return "goal_reached";
    case event_kind::file_renamed:
      return "file_renamed";
  }
  return "?";
}

std::string_view error_kind_name(error_kind k) {
  switch (k) {
    case error_kind::none:
      return "none";
    case error_kind::local_io:
      return "local I/O";
    case error_kind::tracker:
      return "tracker";
    case error_kind::metadata:
      return "metadata";
  }
  return "?";
}

torrent::torrent(session& s, torrent_params p, torrent_id id)
    : session_(s),
      id_(id),
      info_(std::move(p.info)),
      magnet_(p.magnet ? std::make_unique<magnet_link>(std::move(*p.magnet)) : nullptr),
      metadata_file_(std::move(p.metadata_file)),
      metadata_timeout_(p.metadata_timeout),
      given_peers_(p.peers),
      save_path_(std::move(p.save_path)),
      resume_file_(std::move(p.resume_file)),
      file_prio_(std::move(p.file_priorities)),
      force_check_(p.force_check),
      skip_check_(p.skip_check),
      sequential_(p.sequential),
      settings_from_resume_(p.settings_from_resume),
      user_paused_(p.paused),
      labels_(std::move(p.labels)),
      goals_(p.goals),
      down_limit_(p.max_download_rate),
      up_limit_(p.max_upload_rate),
      added_time_(unix_now()),
      last_upload_(clock::now()),
      max_disk_queue_(s.settings().max_disk_queue),
      announce_timer_(s.io()) {
  seed_only_ = p.seed_only;
  std::mt19937 rng(std::random_device{}());
  if (magnet_) {
    wire_hash_ = magnet_->info_hash_v1 ? *magnet_->info_hash_v1 : truncate(*magnet_->info_hash_v2);
    if (magnet_->info_hash_v1 && magnet_->info_hash_v2) v2_wire_hash_ = truncate(*magnet_->info_hash_v2);
    for (const auto& tr : magnet_->trackers)
      tiers_.push_back({tr});
    web_seed_urls_ = p.web_seeds ? *p.web_seeds : magnet_->web_seeds;
  } else {
    wire_hash_ = info_.info_hash_v1 ? *info_.info_hash_v1 : truncate(*info_.info_hash_v2);
    if (info_.has_v1() && info_.has_v2()) v2_wire_hash_ = truncate(*info_.info_hash_v2);
    tiers_ = info_.tracker_tiers;
    web_seed_urls_ = p.web_seeds ? *p.web_seeds : info_.web_seeds;
    init_storage();
  }
  for (auto& tier : tiers_)
    std::shuffle(tier.begin(), tier.end(), rng);
  tracker_key_ = static_cast<std::uint32_t>(rng());
  for (const auto& ep : p.peers) {
    add_peer(ep);
    pinned_->insert(ep);  // given by the user: retried, never forgotten
  }
}

torrent::~torrent() = default;

void torrent::log(const std::string& line) const {
  const auto& f = session_.settings().log;
  if (!f) return;
  std::string tag = info_.name;
  if (tag.empty() && magnet_) tag = magnet_->name;
  if (tag.empty()) tag = to_hex(as_view(wire_hash_)).substr(0, 12);
  if (tag.size() > 40) tag = tag.substr(0, 37) + "...";
  tag = repair_utf8(tag);  // a name cut inside a character, or not UTF-8 at all
  for (auto& c : tag) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';  // no terminal controls
  }
  f("[" + tag + "] " + line);
}

void torrent::init_storage() {
  fs_ = std::make_unique<file_storage>(info_);
  has_pads_ = std::any_of(info_.files.begin(), info_.files.end(), [](const auto& f) { return f.pad; });
  disk_ = make_disk(save_path_);
  picker_ =
      std::make_unique<piece_picker>(fs_->num_pieces(), [this](std::uint32_t piece) { return fs_->piece_size(piece); });
  picker_->set_sequential(sequential_);
  picker_->set_max_partial(session_.settings().max_partial_memory / std::max<std::uint64_t>(1, info_.piece_length));
  bool any_pad = false;
  total_size_ = 0;
  for (const auto& f : fs_->files()) {
    any_pad = any_pad || f.pad;
    if (!f.pad) total_size_ += f.size;
  }
  has_pad_files_ = any_pad;
  if (any_pad) {
    picker_->set_pad_block_test([this](std::uint32_t piece, std::uint32_t block) {
      std::vector<file_slice> sl;
      const std::uint64_t begin = static_cast<std::uint64_t>(block) * piece_picker::block_size;
      const std::uint64_t len = std::min<std::uint64_t>(piece_picker::block_size, fs_->piece_size(piece) - begin);
      fs_->map(piece, begin, len, sl);
      return sl.empty();
    });
  }
  flushed_ = bitfield(fs_->num_pieces());
  if (file_prio_.size() != fs_->files().size()) file_prio_.clear();
  apply_file_priorities();
}

void torrent::apply_file_priorities() {
  // A piece is wanted if any file with data in it is wanted.
  std::vector<std::uint8_t> piece_prio(fs_->num_pieces(), file_prio_.empty() ? 1 : 0);
  if (!file_prio_.empty()) {
    for (std::uint32_t f = 0; f < fs_->files().size(); ++f) {
      const std::uint8_t prio = f < file_prio_.size() ? file_prio_[f] : 1;
      auto [a, b] = fs_->file_pieces(f);
      for (std::uint32_t p = a; p < b; ++p)
        piece_prio[p] = std::max(piece_prio[p], prio);
    }
  }
  for (std::uint32_t p = 0; p < fs_->num_pieces(); ++p)
    picker_->set_priority(p, seed_only_running_ && !picker_->have(p) ? 0 : piece_prio[p]);
  recount_wanted();
}

void torrent::recount_wanted() {
  total_wanted_ = 0;
  have_wanted_ = 0;
  for (std::uint32_t p = 0; p < fs_->num_pieces(); ++p) {
    if (picker_->priority(p) == 0) continue;
    const auto bytes = payload_size(p);
    total_wanted_ += bytes;
    if (picker_->have(p)) have_wanted_ += bytes;
  }
  file_pieces_left_.assign(fs_->files().size(), 0);
  for (std::uint32_t f = 0; f < fs_->files().size(); ++f) {
    const auto& fe = fs_->files()[f];
    if (fe.pad || fe.size == 0) continue;
    auto [a, b] = fs_->file_pieces(f);
    for (std::uint32_t p = a; p < b; ++p)
      file_pieces_left_[f] += picker_->have(p) ? 0 : 1;
  }
}

std::uint64_t torrent::payload_size(std::uint32_t piece) const {
  if (!has_pads_) return fs_->piece_size(piece);
  std::vector<file_slice> sl;
  fs_->map(piece, 0, fs_->piece_size(piece), sl);
  std::uint64_t n = 0;
  for (const auto& s : sl)
    n += s.length;
  return n;
}

void torrent::mark_have(std::uint32_t piece) {
  if (picker_->have(piece)) return;
  picker_->set_have(piece);
  if (picker_->priority(piece) > 0) have_wanted_ += payload_size(piece);
  stream_piece_ready(piece);
}

void torrent::set_state(torrent_state s) {
  if (s == state_) return;
  const auto prev = state_;
  state_ = s;
  session_event e;
  e.kind = event_kind::state_changed;
  e.torrent = id_;
  e.info_hash = wire_hash_;
  e.state = static_cast<std::uint8_t>(s);
  e.prev_state = static_cast<std::uint8_t>(prev);
  e.message = std::string(state_name(s));
  session_.post_event(std::move(e));
}

void torrent::post_event(int kind, std::string message, std::uint32_t index) {
  session_event e;
  e.kind = static_cast<event_kind>(kind);
  e.torrent = id_;
  e.info_hash = wire_hash_;
  e.state = static_cast<std::uint8_t>(state_);
  e.index = index;
  e.message = std::move(message);
  session_.post_event(std::move(e));
}

// --- start: resume data or a check --------------------------------------------------------

void torrent::start() {
  // Until its resume data is read (or its metadata is in) a torrent waits in the queue.
  if (!fs_ || !user_paused_) set_state(torrent_state::queued);
  if (!fs_) {
    if (user_paused_) {
      set_state(torrent_state::paused);
      return;
    }
    start_metadata_fetch();
    return;
  }
  // v2 files without their piece layer (a magnet link gives only the info dictionary):
  // the layers come from peers (BEP 52 hash requests) before any block is requested.
  setup_layer_fetch();
  if (!missing_layers_.view().empty() && session_.settings().log) {
    log("fetching the piece layers of " + std::to_string(missing_layers_.view().size()) +
        " file(s) from peers (BEP 52)");
  }
  if (skip_check_) {
    on_resume_loaded(std::nullopt, {});
    return;
  }
  // Reading the resume file and a stat per file happen on the disk pool, not here.
  auto self = shared_from_this();
  const bool use_resume = !force_check_ && !resume_file_.empty();
  const std::string key =
      info_.info_hash_v1 ? std::string(as_view(*info_.info_hash_v1)) : std::string(as_view(*info_.info_hash_v2));
  session_.disk_pool().post(
      [self, use_resume, key, file = resume_file_, from_resume = settings_from_resume_, base = save_path_] {
        std::optional<resume_data> r;
        if (use_resume) {
          if (auto loaded = load_resume_file(file, key, self->fs_->num_pieces())) r = std::move(loaded).value();
        }
        // The files are where the resume data says (a move may have changed the folder).
        std::filesystem::path root = base;
        if (r && from_resume && !r->save_path.empty()) root = r->save_path;
        disk_io at(*self->fs_, root);
        if (r) at.set_renamed(r->renamed);  // the files are where they were renamed to
        std::vector<std::filesystem::path> paths;
        for (std::uint32_t f = 0; f < self->fs_->files().size(); ++f)
          paths.push_back(at.file_path(f));
        auto stamps = stamp_files(paths);
        asio::post(self->session_.io(), [self, r = std::move(r), stamps = std::move(stamps), root]() mutable {
          if (r) {
            self->renamed_->clear();
            for (const auto& [f, p] : r->renamed)
              if (f < self->fs_->files().size() && !self->fs_->files()[f].pad) (*self->renamed_)[f] = p;
            self->disk_->set_renamed(*self->renamed_);
          }
          if (root != self->save_path_) {
            self->save_path_ = root;
            self->disk_ = self->make_disk(root);
          }
          // Files that differ from what the resume data recorded (or are missing or short).
          std::vector<std::uint32_t> changed;
          for (std::uint32_t f = 0; f < self->fs_->files().size(); ++f) {
            const auto& fe = self->fs_->files()[f];
            if (fe.pad || fe.size == 0) continue;
            const bool short_or_missing = stamps[f].mtime_ns == 0 || stamps[f].size < fe.size;
            const bool differs = r && r->files.size() == stamps.size() &&
                                 (r->files[f].size != stamps[f].size || r->files[f].mtime_ns != stamps[f].mtime_ns);
            if (short_or_missing || differs) changed.push_back(f);
          }
          // Remember which files exist at all, for the no-resume case (check only if any does).
          if (!r) {
            bool any = false;
            for (std::uint32_t f = 0; f < self->fs_->files().size(); ++f)
              any = any || (!self->fs_->files()[f].pad && stamps[f].mtime_ns != 0);
            if (!any) changed.assign(1, UINT32_MAX);  // nothing on disk: nothing to check
          }
          self->on_resume_loaded(std::move(r), std::move(changed));
        });
      });
}

void torrent::on_resume_loaded(std::optional<resume_data> r, std::vector<std::uint32_t> changed_files) {
  if (stopping_) return;
  loaded_ = true;
  const std::uint32_t np = fs_->num_pieces();
  check_list_.clear();
  if (skip_check_) {
    for (std::uint32_t p = 0; p < np; ++p) {
      mark_have(p);
      flushed_.set(p);
    }
  } else if (r) {
    if (settings_from_resume_) {
      // What the user changed while the resume data was being read is newer than it.
      auto take = [this](std::uint16_t bit) { return (early_ & bit) == 0; };
      if (take(early_paused)) user_paused_ = r->paused;
      if (take(early_name)) display_name_ = r->name;
      if (take(early_priorities) && r->file_priorities.size() == fs_->files().size()) {
        file_prio_ = r->file_priorities;
        apply_file_priorities();
      }
      if (take(early_sequential)) {
        sequential_ = r->sequential;
        picker_->set_sequential(sequential_);
      }
      if (take(early_limits)) {
        down_limit_.set_rate(r->max_download_rate);
        up_limit_.set_rate(r->max_upload_rate);
      }
      if (take(early_goals)) {
        goals_.ratio = r->goal_ratio;
        if (r->goal_seeding_time) goals_.seeding_time = std::chrono::seconds(*r->goal_seeding_time);
        if (r->goal_idle_time) goals_.idle_time = std::chrono::seconds(*r->goal_idle_time);
      }
      if (take(early_labels)) labels_ = r->labels;
      if (take(early_queue)) queue_key_ = r->queue_position;
      session_.queue_changed();
    }
    if (r->added_time) added_time_ = r->added_time;
    completed_time_ = r->completed_time;
    seeding_seconds_ = r->seeding_seconds;
    active_seconds_ = r->active_seconds;
    prior_downloaded_ = r->downloaded;
    prior_uploaded_ = r->uploaded;
    // Pieces in files that changed behind our back are hashed again; the rest are trusted.
    std::vector<bool> file_ok(fs_->files().size(), true);
    for (auto f : changed_files)
      if (f < file_ok.size()) file_ok[f] = false;
    std::vector<file_slice> sl;
    for (std::uint32_t p = 0; p < np; ++p) {
      if (!r->pieces.get(p)) continue;
      fs_->map(p, 0, fs_->piece_size(p), sl);
      bool ok = true;
      for (const auto& s : sl)
        ok = ok && file_ok[s.file];
      if (ok) {
        mark_have(p);
        flushed_.set(p);
      } else if (!r->files.empty()) {
        check_list_.push_back(p);  // recorded, then changed: worth a look
      }
    }
  } else if (!(changed_files.size() == 1 && changed_files[0] == UINT32_MAX)) {
    // No usable resume data: hash whatever is on disk.
    for (std::uint32_t p = 0; p < np; ++p)
      check_list_.push_back(p);
  }
  needs_check_ = !check_list_.empty();
  if (!needs_check_ && completed_time_ == 0 && picker_->wanted_complete() && np > 0 && !r) {
    completed_time_ = unix_now();
  }
  // A save asked for while the resume data was unread waited for it (it would have written
  // no verified pieces over the ones on disk): now it is made.
  if (save_after_load_) {
    save_after_load_ = false;
    save_resume();
  }
  early_ = 0;
  enter_queue();
}

void torrent::enter_queue() {
  if (stopping_) return;
  recount_wanted();
  set_state(user_paused_ ? torrent_state::paused : torrent_state::queued);
  session_.queue_changed();
}

void torrent::begin_check() {
  if (!wants_check()) return;
  set_state(torrent_state::checking);
  check_next_ = 0;
  check_done_ = 0;
  ++check_gen_;
  check_next();
}

void torrent::check_next() {
  const unsigned window =
      2 * std::max<std::size_t>(1, session_.settings().hash_threads ? session_.settings().hash_threads : 2);
  while (check_inflight_ < window && check_next_ < check_list_.size() && !stopping_) {
    const std::uint32_t p = check_list_[check_next_++];
    ++check_inflight_;
    auto self = shared_from_this();
    session_.hash_pool().post([self, p, gen = check_gen_, layer = layer_hash(p)] {
      std::string buf(self->fs_->piece_size(p), '\0');
      bool ok = !self->disk_->read(p, 0, buf.size(), buf.data(), true) && self->verify_piece(p, buf, layer);
      asio::post(self->session_.io(), [self, p, ok, gen] { self->on_checked(p, ok, gen); });
    });
  }
}

void torrent::on_checked(std::uint32_t p, bool ok, std::uint64_t gen) {
  --check_inflight_;
  if (stopping_ || gen != check_gen_ || state_ != torrent_state::checking) return;  // aborted
  ++check_done_;
  if (ok) {
    mark_have(p);
    flushed_.set(p);
  }
  if (check_done_ == check_list_.size()) {
    on_check_done();
    return;
  }
  check_next();
}

void torrent::on_check_done() {
  // Checked pieces may sit only in the page cache (a crash before any flush): sync the
  // files before the resume data vouches for them.
  auto self = shared_from_this();
  session_.hash_pool().post([self, gen = check_gen_] {
    auto ec = self->disk_->sync_all();
    asio::post(self->session_.io(), [self, ec, gen] {
      if (self->stopping_ || gen != self->check_gen_ || self->state_ != torrent_state::checking) return;
      self->needs_check_ = false;
      self->check_list_.clear();
      if (self->completed_time_ == 0 && self->picker_->wanted_complete()) self->completed_time_ = unix_now();
      if (!ec) self->save_resume();
      self->enter_queue();
    });
  });
}

// --- running ------------------------------------------------------------------------------

void torrent::activate() {
  if (!wants_slot() || stopping_) return;
  active_ = true;
  enter_running();
}

void torrent::enter_running() {
  if (state_ == torrent_state::error || !active_) return;
  if (seed_only_) {
    // The data is checked: what is missing now is never wanted.
    seed_only_running_ = true;
    apply_file_priorities();
  }
  const bool complete = picker_->wanted_complete();
  set_state(complete ? torrent_state::seeding : torrent_state::downloading);
  last_flush_ = clock::now();
  const auto gen = run_gen_;
  auto self = shared_from_this();
  if (complete) {
    session_.disk_pool().post([self, gen] {
      auto ec = self->disk_->create_empty_files();
      asio::post(self->session_.io(), [self, ec, gen] {
        if (ec && gen == self->run_gen_) self->fail("cannot create empty files: " + ec.message());
      });
    });
    if (!finished_fired_) {
      finished_fired_ = true;
      post_event(static_cast<int>(event_kind::torrent_finished));
    }
  }
  if (!tiers_.empty()) {
    announced_started_ = true;
    asio::co_spawn(session_.io(), announce_loop(self, gen), asio::detached);
  }
  start_web_seeds();
  session_.torrent_activated(self);
  connect_more();
  if (complete) check_goals();
}

void torrent::tick() {
  if (metadata_phase()) {
    metadata_tick();
    return;
  }
  if (!active_ || stopping_ || state_ == torrent_state::error) return;
  ++tick_count_;
  ++active_seconds_;
  if (state_ == torrent_state::seeding) ++seeding_seconds_;
  connect_more();
  if (tick_count_ % choke_every_ticks == 0) run_choker();
  // Hash requests that timed out or were rejected go to another peer.
  if (!missing_layers_.view().empty() || !leaf_checks_.view().empty()) {
    for (auto& p : std::vector(peers_))
      request_hashes(p.get());
  }
  if (!unflushed_.empty() && clock::now() - last_flush_ >= session_.settings().flush_interval) do_flush({});
  check_goals();
}

void torrent::check_goals() {
  if (state_ != torrent_state::seeding || !active_) return;
  std::string reached;
  if (goals_.ratio) {
    const double size = static_cast<double>(std::max<std::uint64_t>(total_wanted_, 1));
    if (static_cast<double>(total_uploaded()) >= *goals_.ratio * size) reached = "ratio";
  }
  if (goals_.seeding_time && std::chrono::seconds(seeding_seconds_) >= *goals_.seeding_time) reached = "seeding time";
  if (goals_.idle_time && clock::now() - last_upload_ >= *goals_.idle_time) reached = "idle time";
  if (reached.empty()) return;
  post_event(static_cast<int>(event_kind::goal_reached), reached);
  pause();
}

void torrent::wind_down(std::function<void()> then) {
  active_ = false;
  ++winding_down_;
  ++run_gen_;
  announce_timer_.cancel();
  stop_web_seeds();
  for (auto& p : std::vector(peers_))
    p->close("stopping");
  if (auto* c = connecting_.get()) c->clear();
  session_.torrent_deactivated(*this);
  // Tell the tracker we left (briefly, without holding anything up).
  if (announced_started_) {
    announced_started_ = false;
    asio::co_spawn(
        session_.io(),
        [self = shared_from_this()]() -> asio::awaitable<void> {
          ++self->goodbyes_;
          co_await self->announce_once(static_cast<int>(tracker::event::stopped), true);
          --self->goodbyes_;
        },
        asio::detached);
  }
  // Wait for pieces in the hash/write pipeline, then flush and save resume data.
  auto self = shared_from_this();
  when_idle([self] { return self->disk_queue_bytes_ > 0 || self->check_inflight_ > 0; },
            [self, then = std::move(then)] {
              // Done: `then` first (it may queue a check), then the queue may hand out the slot again.
              auto fn = [self, then] {
                if (then) then();
                --self->winding_down_;
                self->session_.queue_changed();
              };
              if (self->state_ == torrent_state::error || !self->fs_) {
                fn();
                return;
              }
              self->do_flush(fn);
            });
}

void torrent::deactivate() {
  if (!active_) return;
  wind_down({});
  if (state_ != torrent_state::error) set_state(torrent_state::queued);
}

// --- runtime control ----------------------------------------------------------------------

void torrent::pause() {
  if (stopping_ || state_ == torrent_state::paused) return;
  changed_early(early_paused);
  user_paused_ = true;
  if (active_) {
    wind_down([self = shared_from_this()] { self->save_resume(); });
  } else {
    ++check_gen_;  // a check in progress is abandoned (and done again on resume)
    ++fetch_gen_;  // so is a metadata fetch
    close_metadata_peers("paused", false);
    save_resume();
  }
  set_state(torrent_state::paused);
  session_.queue_changed();
}

void torrent::resume() {
  if (stopping_) return;
  if (state_ != torrent_state::paused && state_ != torrent_state::error) return;
  changed_early(early_paused);
  user_paused_ = false;
  if (state_ == torrent_state::error) {
    error_.clear();
    error_kind_ = error_kind::none;
  }
  if (!fs_) {
    start_metadata_fetch();
    return;
  }
  save_resume();
  enter_queue();
}

void torrent::force_recheck() {
  if (stopping_ || !fs_) return;
  auto restart = [self = shared_from_this()] {
    if (self->stopping_) return;
    // Forget what we had: every piece is hashed again.
    for (std::uint32_t p = 0; p < self->fs_->num_pieces(); ++p)
      if (self->picker_->have(p)) self->picker_->clear_have(p);
    self->flushed_ = bitfield(self->fs_->num_pieces());
    self->recount_wanted();
    self->check_list_.clear();
    for (std::uint32_t p = 0; p < self->fs_->num_pieces(); ++p)
      self->check_list_.push_back(p);
    self->needs_check_ = true;
    self->finished_fired_ = false;
    if (self->state_ == torrent_state::error) {
      self->error_.clear();
      self->error_kind_ = error_kind::none;
    }
    if (self->user_paused_) {
      self->set_state(torrent_state::paused);  // checked when resumed
      return;
    }
    self->enter_queue();
  };
  ++check_gen_;
  if (active_) {
    wind_down(restart);
    set_state(torrent_state::queued);
  } else {
    restart();
  }
}

void torrent::reannounce() {
  // The loop announces at once, or when the tracker's `min interval` allows.
  if (active_) announce_timer_.cancel();
}

void torrent::set_file_priorities(std::vector<std::uint8_t> prio) {
  if (!fs_) return;
  if (prio.size() != fs_->files().size()) prio.resize(fs_->files().size(), 1);
  changed_early(early_priorities);
  file_prio_ = std::move(prio);
  const bool was_complete = picker_->wanted_complete();
  apply_file_priorities();
  const bool complete = picker_->wanted_complete();
  if (active_ && was_complete && !complete && state_ == torrent_state::seeding) {
    // Newly wanted files after completion: downloading again.
    finished_fired_ = false;
    set_state(torrent_state::downloading);
    start_web_seeds();
    reannounce();
  }
  for (auto& p : std::vector(peers_)) {
    p->update_interest();
    p->fill_requests();
  }
  if (active_ && complete && state_ == torrent_state::downloading) maybe_finished();
  save_resume();
  session_.queue_changed();
}

void torrent::set_sequential(bool on) {
  changed_early(early_sequential);
  sequential_ = on;
  if (picker_) picker_->set_sequential(on);
  save_resume();
}

void torrent::set_limits(std::uint64_t down, std::uint64_t up) {
  changed_early(early_limits);
  down_limit_.set_rate(down);
  up_limit_.set_rate(up);
  save_resume();
}

void torrent::set_goals(const seed_goals& g) {
  changed_early(early_goals);
  goals_ = g;
  save_resume();
  check_goals();
}

void torrent::save_settings() {
  changed_early(early_queue);  // the session moved it in the queue
  save_resume();
}

void torrent::set_labels(std::vector<std::string> labels) {
  changed_early(early_labels);
  labels_ = std::move(labels);
  save_resume();
}

void torrent::set_display_name(std::string name) {
  changed_early(early_name);
  display_name_ = std::move(name);
  save_resume();
}

void torrent::merge(const torrent_params& p) {
  std::vector<std::vector<std::string>> more =
      p.magnet ? std::vector<std::vector<std::string>>{} : p.info.tracker_tiers;
  if (p.magnet) {
    for (const auto& tr : p.magnet->trackers)
      more.push_back({tr});
  }
  bool added_tracker = false;
  for (const auto& tier : more) {
    for (const auto& url : tier) {
      bool known = false;
      for (const auto& t : tiers_)
        known = known || std::find(t.begin(), t.end(), url) != t.end();
      if (!known) {
        tiers_.push_back({url});
        added_tracker = true;
        next_scrape_ = 0;  // the new tracker is scraped at the next round
      }
    }
  }
  std::vector<std::string> seeds = p.web_seeds ? *p.web_seeds : (p.magnet ? p.magnet->web_seeds : p.info.web_seeds);
  bool added_seed = false;
  for (const auto& u : seeds) {
    if (std::find(web_seed_urls_.begin(), web_seed_urls_.end(), u) == web_seed_urls_.end()) {
      web_seed_urls_.push_back(u);
      added_seed = true;
    }
  }
  for (const auto& ep : p.peers) {
    add_peer(ep);
    pinned_->insert(ep);
  }
  if (active_ && added_seed && state_ == torrent_state::downloading) {
    stop_web_seeds();
    start_web_seeds();
  }
  if (active_ && added_tracker) {
    if (announced_started_) {
      reannounce();
    } else {
      announced_started_ = true;
      asio::co_spawn(session_.io(), announce_loop(shared_from_this(), run_gen_), asio::detached);
    }
  }
  if (active_) connect_more();
}

torrent_status torrent::status(bool lists) const {
  torrent_status s;
  s.id = id_;
  s.info_hash = wire_hash_;
  s.name = !display_name_.empty() ? display_name_
           : fs_                  ? info_.name
                                  : (magnet_ && !magnet_->name.empty() ? magnet_->name : to_hex(as_view(wire_hash_)));
  s.state = state_;
  s.error = error_;
  s.error_type = error_kind_;
  if (s.error_type == error_kind::none && tracker_failed_) {
    s.error_type = error_kind::tracker;
    s.error = tracker_message_;
  }
  if (fs_) {
    s.num_pieces = fs_->num_pieces();
    s.pieces_have = picker_->have_bits().count();
    s.total_size = total_size_;
    s.total_wanted = total_wanted_;
    s.have_wanted = have_wanted_;
    s.check_progress = check_list_.empty() ? 1.0 : static_cast<double>(check_done_) / check_list_.size();
  }
  s.download_rate = download_meter_.rate();
  s.upload_rate = upload_meter_.rate();
  s.downloaded = downloaded_;
  s.uploaded = uploaded_;
  s.total_downloaded = total_downloaded();
  s.total_uploaded = total_uploaded();
  s.wasted = wasted_;
  s.peers = static_cast<std::uint32_t>(peers_.size());
  for (const auto& p : peers_)
    s.seeds += p->is_seed() ? 1 : 0;
  for (const auto& ws : web_seeds_) {
    s.web_seeds += ws->dropped() ? 0 : 1;
    s.web_seed_downloaded += ws->downloaded();
  }
  s.hash_failures = hash_failures_;
  s.banned = static_cast<std::uint32_t>(banned_.view().size());
  if (lists) s.tracker_message = tracker_message_;
  s.queue_position = queue_position_;
  s.sequential = sequential_;
  s.max_download_rate = down_limit_.rate();
  s.max_upload_rate = up_limit_.rate();
  s.goals = goals_;
  if (lists) {
    s.labels = labels_;
    for (const auto& tier : tiers_)
      s.trackers.insert(s.trackers.end(), tier.begin(), tier.end());
    s.save_path = save_path_.string();
  }
  s.added_time = added_time_;
  s.completed_time = completed_time_;
  s.seeding_seconds = seeding_seconds_;
  s.active_seconds = active_seconds_;
  return s;
}

void torrent::stop(std::function<void()> done) {
  if (done) stop_waiters_.push_back(std::move(done));
  if (stopping_) return;  // the first stop calls every waiter when it is over
  fail_stream_waits(std::make_error_code(std::errc::operation_canceled));
  close_metadata_peers("stopping", false);
  stopping_ = true;
  ++check_gen_;
  ++fetch_gen_;
  const bool was_checking = state_ == torrent_state::checking;
  const bool was_error = state_ == torrent_state::error;
  auto rest = [self = shared_from_this(), was_checking, was_error] {
    if (self->fs_ && !was_checking) self->save_resume();
    // Stopped mid-check: what was checked so far is not the whole truth; the resume data
    // keeps what it said, so the next start checks again instead of trusting a partial list.
    if (!was_error) self->state_ = torrent_state::stopped;
    // Let the resume write (queued on the disk pool) land, and the trackers be told we
    // left (announce_once gives them 3 s at most), before anyone is told.
    self->session_.disk_pool().post([self] {
      asio::post(self->session_.io(), [self] {
        self->when_idle([self] { return self->goodbyes_ > 0; },
                        [self] {
                          auto waiters = std::move(self->stop_waiters_);
                          self->stop_waiters_.clear();
                          for (auto& w : waiters)
                            w();
                        });
      });
    });
  };
  auto finish = [self = shared_from_this(), was_checking, was_error, rest] {
    if (!self->fs_ || was_checking || !was_error) {
      rest();
      return;
    }
    // In error: keep what was verified, if it can still be synced (on the disk pool: an
    // fdatasync may take seconds); otherwise claim nothing new.
    self->session_.disk_pool().post([self, rest] {
      const bool synced = !self->disk_->flush();
      asio::post(self->session_.io(), [self, synced, rest] {
        if (synced) {
          for (auto p : self->unflushed_)
            self->flushed_.set(p);
        }
        self->unflushed_.clear();
        rest();
      });
    });
  };
  if (active_ || was_error) {
    active_ = false;
    // wind_down flushes (and saves) unless in error; finish saves again with the final totals.
    if (was_error) {
      ++run_gen_;
      announce_timer_.cancel();
      finish();
    } else {
      wind_down(finish);
    }
  } else {
    // Not running (queued, paused, checking, fetching metadata): wait for checks in flight.
    when_idle([self = shared_from_this()] { return self->check_inflight_ > 0; }, finish);
  }
}

void torrent::when_idle(std::function<bool()> busy, std::function<void()> then) {
  if (!busy()) {
    then();
    return;
  }
  auto waiter = std::make_shared<asio::steady_timer>(session_.io());
  waiter->expires_after(std::chrono::milliseconds(10));
  waiter->async_wait([self = shared_from_this(), waiter, busy = std::move(busy), then = std::move(then)](
                         boost::system::error_code) mutable { self->when_idle(std::move(busy), std::move(then)); });
}

}  // namespace shoal
