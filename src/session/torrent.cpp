#include "session/torrent.hpp"

#include <algorithm>
#include <random>

#include "core/merkle.hpp"
#include "dht/krpc.hpp"
#include "session/peer_connection.hpp"
#include "session/session.hpp"
#include "session/web_seed.hpp"
#include "storage/resume.hpp"
#include "tracker/client.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace shoal {

using namespace boost::asio::experimental::awaitable_operators;

namespace {
using clock = std::chrono::steady_clock;
constexpr auto first_retry = std::chrono::seconds(2);
constexpr auto max_retry = std::chrono::seconds(60);
constexpr int choke_every_ticks = 10;
constexpr std::size_t max_candidates = 2000;  // peers known but not connected
constexpr std::uint32_t max_failures = 5;     // failed connection attempts before a peer is forgotten

// --local: only loopback and private-range addresses (the test networks), never the internet.
using dht::is_local_address;
constexpr int optimistic_every_ticks = 30;

sha1_digest wire_hash_of(const metainfo& m) {
  if (m.info_hash_v1) return *m.info_hash_v1;
  sha1_digest d{};
  std::copy_n(m.info_hash_v2->begin(), 20, d.begin());
  return d;
}

std::string resume_key(const metainfo& m) {
  return m.info_hash_v1 ? std::string(as_view(*m.info_hash_v1)) : std::string(as_view(*m.info_hash_v2));
}
}  // namespace

std::string_view state_name(torrent_state s) {
  switch (s) {
    case torrent_state::checking:
      return "checking";
    case torrent_state::downloading:
      return "downloading";
    case torrent_state::seeding:
      return "seeding";
    case torrent_state::stopped:
      return "stopped";
    case torrent_state::error:
      return "error";
  }
  return "?";
}

torrent::torrent(session& s, torrent_params p)
    : session_(s),
      info_(std::move(p.info)),
      fs_(info_),
      disk_(fs_, p.save_path),
      resume_file_(std::move(p.resume_file)),
      file_prio_(std::move(p.file_priorities)),
      force_check_(p.force_check),
      skip_check_(p.skip_check),
      sequential_(p.sequential),
      wire_hash_(wire_hash_of(info_)),
      max_disk_queue_(s.settings().max_disk_queue),
      tick_(s.io()),
      announce_timer_(s.io()) {
  picker_ =
      std::make_unique<piece_picker>(fs_.num_pieces(), [this](std::uint32_t piece) { return fs_.piece_size(piece); });
  picker_->set_sequential(sequential_);
  bool any_pad = false;
  for (const auto& f : fs_.files())
    any_pad = any_pad || f.pad;
  has_pad_files_ = any_pad;
  if (any_pad) {
    picker_->set_pad_block_test([this](std::uint32_t piece, std::uint32_t block) {
      std::vector<file_slice> sl;
      const std::uint64_t begin = static_cast<std::uint64_t>(block) * piece_picker::block_size;
      const std::uint64_t len = std::min<std::uint64_t>(piece_picker::block_size, fs_.piece_size(piece) - begin);
      fs_.map(piece, begin, len, sl);
      return sl.empty();
    });
  }
  flushed_ = bitfield(fs_.num_pieces());
  std::mt19937 rng(std::random_device{}());
  tiers_ = info_.tracker_tiers;
  for (auto& tier : tiers_)
    std::shuffle(tier.begin(), tier.end(), rng);
  tracker_key_ = static_cast<std::uint32_t>(rng());
  web_seed_urls_ = p.web_seeds ? *p.web_seeds : info_.web_seeds;
  for (const auto& ep : p.peers) {
    add_peer(ep);
    pinned_.insert(ep);  // given by the user: retried, never forgotten
  }
  apply_file_priorities();
}

torrent::~torrent() = default;

void torrent::apply_file_priorities() {
  if (file_prio_.empty()) return;
  // A piece is wanted if any file with data in it is wanted.
  std::vector<std::uint8_t> piece_prio(fs_.num_pieces(), 0);
  for (std::uint32_t f = 0; f < fs_.files().size(); ++f) {
    const std::uint8_t prio = f < file_prio_.size() ? file_prio_[f] : 1;
    auto [a, b] = fs_.file_pieces(f);
    for (std::uint32_t p = a; p < b; ++p)
      piece_prio[p] = std::max(piece_prio[p], prio);
  }
  for (std::uint32_t p = 0; p < fs_.num_pieces(); ++p)
    picker_->set_priority(p, piece_prio[p]);
}

void torrent::add_peer(const tcp::endpoint& ep) {
  if (session_.is_self(ep) || is_banned(ep)) return;
  candidates_.insert(ep);
}

bool torrent::is_banned(const tcp::endpoint& ep) const {
  return banned_.count(ep) != 0 || banned_ips_.count(ep.address()) != 0;
}

void torrent::start() {
  if (info_.version == torrent_version::v2) {
    // v2-only pieces are checked against piece layers; without them nothing can be verified.
    for (const auto& f : fs_.files()) {
      if (f.pieces_root && f.size > info_.piece_length && info_.piece_layers.count(*f.pieces_root) == 0) {
        fail("v2 torrent is missing the piece layer of '" + f.path +
             "', and fetching piece layers from peers is not supported yet");
        return;
      }
    }
  }
  if (skip_check_) {
    for (std::uint32_t p = 0; p < fs_.num_pieces(); ++p) {
      picker_->set_have(p);
      flushed_.set(p);
    }
    enter_running();
    return;
  }
  if (!force_check_ && !resume_file_.empty()) {
    auto r = load_resume_file(resume_file_, resume_key(info_), fs_.num_pieces());
    if (r) {
      // Trust only pieces whose files are all still there at full size.
      std::vector<bool> file_ok(fs_.files().size());
      for (std::uint32_t f = 0; f < fs_.files().size(); ++f) {
        file_ok[f] = fs_.files()[f].pad || fs_.files()[f].size == 0 || disk_.file_complete(f);
      }
      std::vector<file_slice> sl;
      for (std::uint32_t p = 0; p < fs_.num_pieces(); ++p) {
        if (!r->pieces.get(p)) continue;
        fs_.map(p, 0, fs_.piece_size(p), sl);
        bool ok = true;
        for (const auto& s : sl)
          ok = ok && file_ok[s.file];
        if (ok) {
          picker_->set_have(p);
          flushed_.set(p);
        }
      }
      prior_downloaded_ = r->downloaded;
      prior_uploaded_ = r->uploaded;
      enter_running();
      return;
    }
  }
  // No usable resume data: hash whatever is on disk.
  bool any_file = false;
  for (std::uint32_t f = 0; f < fs_.files().size(); ++f) {
    std::error_code ec;
    any_file = any_file || (!fs_.files()[f].pad && std::filesystem::exists(disk_.file_path(f), ec));
  }
  if (!any_file) {
    enter_running();
    return;
  }
  start_checking();
}

void torrent::start_checking() {
  state_ = torrent_state::checking;
  check_next_ = 0;
  check_done_ = 0;
  check_inflight_ = 0;
  check_next();
}

void torrent::check_next() {
  const unsigned window =
      2 * std::max<std::size_t>(1, session_.settings().hash_threads ? session_.settings().hash_threads : 2);
  while (check_inflight_ < window && check_next_ < fs_.num_pieces() && !stopping_) {
    const std::uint32_t p = check_next_++;
    ++check_inflight_;
    auto self = shared_from_this();
    session_.hash_pool().post([self, p] {
      std::string buf(self->fs_.piece_size(p), '\0');
      bool ok = !self->disk_.read(p, 0, buf.size(), buf.data(), true) && self->verify_piece(p, buf);
      asio::post(self->session_.io(), [self, p, ok] { self->on_checked(p, ok); });
    });
  }
}

void torrent::on_checked(std::uint32_t p, bool ok) {
  --check_inflight_;
  ++check_done_;
  if (ok) {
    picker_->set_have(p);
    flushed_.set(p);
  }
  if (stopping_) return;
  if (check_done_ == fs_.num_pieces()) {
    // Checked pieces may sit only in the page cache (a crash before any flush): sync the
    // files before the resume data vouches for them.
    auto self = shared_from_this();
    session_.hash_pool().post([self] {
      auto ec = self->disk_.sync_all();
      asio::post(self->session_.io(), [self, ec] {
        if (!ec) self->save_resume();
        self->enter_running();
      });
    });
    return;
  }
  check_next();
}

bool torrent::verify_piece(std::uint32_t piece, std::string_view data) const {
  if (info_.has_v1()) {
    const sha1_digest h = sha1(data);
    return std::string_view(info_.v1_piece_hashes).substr(static_cast<std::size_t>(piece) * 20, 20) == as_view(h);
  }
  // v2: the piece's merkle subtree must match the piece layer (or the root, for small files).
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * info_.piece_length;
  const file_entry* file = nullptr;
  for (const auto& f : fs_.files()) {
    if (f.size > 0 && f.offset <= start && start < f.offset + f.size) {
      file = &f;
      break;
    }
  }
  if (!file || !file->pieces_root) return false;
  std::vector<sha256_digest> leaves;
  for (std::size_t off = 0; off < data.size(); off += merkle::block_size) {
    leaves.push_back(sha256(data.substr(off, merkle::block_size)));
  }
  if (file->size <= info_.piece_length) return merkle::root(leaves, sha256_digest{}) == *file->pieces_root;
  leaves.resize(info_.piece_length / merkle::block_size, sha256_digest{});
  const sha256_digest got = merkle::root(leaves, sha256_digest{});
  auto layer = info_.piece_layers.find(*file->pieces_root);
  if (layer == info_.piece_layers.end()) return false;
  const std::uint64_t idx = (start - file->offset) / info_.piece_length;
  return std::string_view(layer->second).substr(idx * 32, 32) == as_view(got);
}

void torrent::enter_running() {
  if (state_ == torrent_state::error) return;
  state_ = picker_->wanted_complete() ? torrent_state::seeding : torrent_state::downloading;
  last_flush_ = clock::now();
  if (state_ == torrent_state::seeding) {
    auto ec = disk_.create_empty_files();
    if (ec) {
      fail("cannot create empty files: " + ec.message());
      return;
    }
    if (!finished_fired_) {
      finished_fired_ = true;
      // Posted: the owner sets on_finished after add_torrent returns.
      asio::post(session_.io(), [self = shared_from_this()] {
        if (self->on_finished) self->on_finished();
      });
    }
  }
  if (!tiers_.empty() && !announced_started_) {
    announced_started_ = true;
    asio::co_spawn(session_.io(), announce_loop(shared_from_this()), asio::detached);
  }
  start_web_seeds();
  // The tick drives connections, the choker and periodic flushes.
  auto self = shared_from_this();
  tick_.expires_after(std::chrono::milliseconds(200));
  tick_.async_wait([self](boost::system::error_code ec) {
    if (ec || self->stopping_) return;
    self->connect_more();
    self->tick_count_ = 0;
    // Re-arm every second from here on.
    struct ticker {
      std::shared_ptr<torrent> t;
      void operator()(boost::system::error_code ec) const {
        if (ec || t->stopping_ || t->state_ == torrent_state::error) return;
        ++t->tick_count_;
        t->connect_more();
        if (t->tick_count_ % choke_every_ticks == 0) t->run_choker();
        if (!t->unflushed_.empty() && clock::now() - t->last_flush_ >= t->session_.settings().flush_interval) {
          t->do_flush({});
        }
        t->tick_.expires_after(std::chrono::seconds(1));
        t->tick_.async_wait(ticker{t});
      }
    };
    self->tick_.expires_after(std::chrono::seconds(1));
    self->tick_.async_wait(ticker{self});
  });
  connect_more();
}

void torrent::connect_more() {
  if (stopping_ || state_ == torrent_state::error || state_ == torrent_state::checking) return;
  const auto now = clock::now();
  std::size_t active = peers_.size() + connecting_.size();
  for (const auto& ep : candidates_) {
    if (active >= session_.settings().max_peers_per_torrent) break;
    if (connecting_.count(ep) || is_banned(ep) || session_.is_self(ep)) continue;
    bool connected = false;
    // Connected already, either way round (an incoming peer is known by its listen port).
    for (auto& p : peers_)
      connected = connected || p->endpoint() == ep || p->listen_endpoint() == ep;
    if (connected) continue;
    auto f = failed_.find(ep);
    if (f != failed_.end()) {
      const auto backoff = std::min<std::chrono::steady_clock::duration>(
          first_retry * (1u << std::min<std::uint32_t>(f->second.count - 1, 5)), max_retry);
      if (now - f->second.when < backoff) continue;
    }
    connecting_.insert(ep);
    ++active;
    if (session_.settings().log) {
      session_.settings().log("connecting to " + ep.address().to_string() + ":" + std::to_string(ep.port()));
    }
    auto p = std::make_shared<peer_connection>(session_, nullptr, true);
    auto self = shared_from_this();
    p->start_outgoing(self, ep);
    // Watch the attempt: if it closes before attaching, remember the failure.
    auto watch = std::make_shared<asio::steady_timer>(session_.io());
    auto check = std::make_shared<std::function<void()>>();
    std::weak_ptr<peer_connection> wp = p;
    *check = [self, wp, ep, watch, check] {
      auto peer = wp.lock();
      bool attached = false;
      for (auto& q : self->peers_)
        attached = attached || q.get() == peer.get();
      if (peer && !peer->closed() && !attached) {
        watch->expires_after(std::chrono::milliseconds(100));
        watch->async_wait([check](boost::system::error_code) { (*check)(); });
        return;
      }
      self->connecting_.erase(ep);
      if (!attached) {
        auto& f = self->failed_[ep];
        f.when = clock::now();
        // Contacts from peers that never answer are forgotten, so they cannot crowd out others.
        if (++f.count >= max_failures && self->pinned_.count(ep) == 0) {
          self->candidates_.erase(ep);
          self->failed_.erase(ep);
        }
      } else {
        self->failed_.erase(ep);
      }
      *check = nullptr;  // break the cycle
    };
    watch->expires_after(std::chrono::milliseconds(50));
    watch->async_wait([check](boost::system::error_code) {
      if (*check) (*check)();
    });
  }
}

bool torrent::attach(const std::shared_ptr<peer_connection>& p) {
  if (stopping_ || state_ == torrent_state::error) return false;
  if (peers_.size() >= session_.settings().max_peers_per_torrent) return false;
  if (is_banned(p->endpoint())) return false;
  // Per-IP limit; on loopback every peer shares the address, so count address+port there.
  const auto& ep = p->endpoint();
  std::uint32_t same = 0;
  for (auto& q : peers_) {
    if (ep.address().is_loopback() ? q->endpoint() == ep : q->endpoint().address() == ep.address()) ++same;
  }
  if (same >= session_.settings().max_peers_per_ip) return false;
  peers_.push_back(p);
  return true;
}

void torrent::detach(peer_connection* p) {
  auto it = std::find_if(peers_.begin(), peers_.end(), [p](auto& q) { return q.get() == p; });
  if (it == peers_.end()) return;
  auto keep = *it;  // stay alive until we are done with it
  peers_.erase(it);
  picker_->remove_peer(p->has(), p->counted_as_seed());
  if (optimistic_ == p) optimistic_ = nullptr;
  for (auto& [piece, buf] : buffers_) {
    for (auto& s : buf->senders) {
      if (s == p) s = nullptr;
    }
  }
  // Its unchoke slot is free now.
  if (p->peer_interested() && !p->am_choking())
    asio::post(session_.io(), [self = shared_from_this()] { self->run_choker(); });
}

void torrent::on_have(peer_connection* p, std::uint32_t piece) {
  if (!p->counted_as_seed()) picker_->add_have(piece);
  p->update_interest();
}

void torrent::on_pex(peer_connection* from, const wire::pex_message& m) {
  if (info_.is_private) return;
  std::size_t added = 0;
  std::set<asio::ip::address> ips;  // one contact per address and message, except on loopback
  for (const auto& [ep, flags] : m.added) {
    if (candidates_.size() >= max_candidates) break;
    if (!ep.address().is_loopback() && !ips.insert(ep.address()).second) continue;
    if (session_.settings().local && !is_local_address(ep.address())) continue;
    // A seed gains nothing from contacts that are seeds too.
    if (state_ == torrent_state::seeding && (flags & wire::pex_seed)) continue;
    if (session_.is_self(ep) || is_banned(ep) || candidates_.count(ep)) continue;
    candidates_.insert(ep);
    ++added;
  }
  if (added && session_.settings().log) {
    const auto& ep = from->endpoint();
    session_.settings().log("pex: " + std::to_string(added) + " new peers from " + ep.address().to_string() + ":" +
                            std::to_string(ep.port()));
  }
  if (added) connect_more();
}

std::vector<std::pair<tcp::endpoint, std::uint8_t>> torrent::pex_contacts(const peer_connection* except) const {
  std::vector<std::pair<tcp::endpoint, std::uint8_t>> out;
  for (const auto& p : peers_) {
    if (p.get() == except || p->closed()) continue;
    auto ep = p->listen_endpoint();
    if (!ep) continue;
    std::uint8_t flags = 0;
    if (p->is_seed() || p->upload_only()) flags |= wire::pex_seed;
    if (p->is_outgoing()) flags |= wire::pex_reachable;
    out.emplace_back(*ep, flags);
  }
  return out;
}

void torrent::on_peer_interest_changed(peer_connection* p) {
  if (p->peer_interested()) {
    // Unchoke at once if a slot is free, rather than waiting for the next round.
    std::uint32_t unchoked = 0;
    for (auto& q : peers_)
      unchoked += q->am_choking() ? 0 : 1;
    if (unchoked < upload_slots() + 1) p->choke(false);
  } else if (!p->am_choking()) {
    p->choke(true);
    run_choker();
  }
}

std::uint32_t torrent::upload_slots() const {
  const auto& st = session_.settings();
  if (st.upload_slots) return st.upload_slots;
  if (st.max_upload_rate) {
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(st.max_upload_rate / (64 * 1024), 2, 20));
  }
  return 8;
}

void torrent::run_choker() {
  if (stopping_) return;
  std::vector<peer_connection*> interested;
  for (auto& p : peers_) {
    if (p->peer_interested() && !p->closed()) interested.push_back(p.get());
  }
  const std::uint32_t slots = upload_slots();
  if (state_ == torrent_state::seeding) {
    // Seeding: share fairly; those that have received least from us go first.
    std::sort(interested.begin(), interested.end(),
              [](peer_connection* a, peer_connection* b) { return a->uploaded_total() < b->uploaded_total(); });
  } else {
    // Downloading: tit-for-tat, the peers that give us most.
    std::sort(interested.begin(), interested.end(),
              [](peer_connection* a, peer_connection* b) { return a->download_rate() > b->download_rate(); });
  }
  // Rotate the optimistic unchoke every 30 s to the one waiting longest.
  bool optimistic_alive = false;
  for (auto* p : interested)
    optimistic_alive = optimistic_alive || p == optimistic_;
  if (!optimistic_alive || tick_count_ % optimistic_every_ticks == 0) {
    optimistic_ = nullptr;
    for (std::size_t i = slots; i < interested.size(); ++i) {
      if (!optimistic_ || interested[i]->last_unchoked() < optimistic_->last_unchoked()) optimistic_ = interested[i];
    }
  }
  for (auto& p : peers_) {
    const auto it = std::find(interested.begin(), interested.end(), p.get());
    const bool regular = it != interested.end() && static_cast<std::uint32_t>(it - interested.begin()) < slots;
    p->choke(!(regular || p.get() == optimistic_));
  }
}

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
    buf->size = fs_.piece_size(piece);
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
  auto it = buffers_.find(piece);
  if (it == buffers_.end()) return;
  auto buf = it->second;
  buffers_.erase(it);
  disk_queue_bytes_ += buf->size;
  auto self = shared_from_this();
  session_.hash_pool().post([self, piece, buf] {
    const bool ok = self->verify_piece(piece, buf->data());
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
      banned_.insert(liar);
    } else {
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
  if (auto s = suspects_.find(piece); s != suspects_.end()) {
    // The good copy is known now: whoever sent a different block lied.
    for (const auto& [ep, blk, h] : s->second) {
      const std::size_t off = static_cast<std::size_t>(blk) * piece_picker::block_size;
      if (sha1(buf->data().substr(off, piece_picker::block_size)) != h) {
        if (blame_web_seed(ep, piece)) continue;
        banned_.insert(ep);
        for (auto& p : peers_) {
          if (p->endpoint() == ep) {
            ban(p.get(), "smart ban: its block of piece " + std::to_string(piece) + " was corrupt");
            break;
          }
        }
      }
    }
    suspects_.erase(s);
  }
  auto self = shared_from_this();
  session_.disk_pool().post([self, piece, buf] {
    auto ec = self->disk_.write(piece, 0, buf->data());
    asio::post(self->session_.io(), [self, piece, ec, n = buf->size] { self->on_piece_written(piece, ec, n); });
  });
}

void torrent::on_piece_written(std::uint32_t piece, std::error_code ec, std::size_t bytes) {
  disk_queue_bytes_ -= bytes;
  if (ec) {
    picker_->piece_failed(piece);
    std::vector<file_slice> sl;
    fs_.map(piece, 0, fs_.piece_size(piece), sl);
    const std::string where = sl.empty() ? std::string("piece ") + std::to_string(piece) : fs_.files()[sl[0].file].path;
    fail("cannot write " + where + ": " + ec.message());
    return;
  }
  picker_->piece_passed(piece);
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
  // Finished means verified AND flushed: then a crash cannot lose it.
  do_flush([self] {
    if (self->state_ != torrent_state::downloading) return;
    auto ec = self->disk_.create_empty_files();
    if (ec) {
      self->fail("cannot create empty files: " + ec.message());
      return;
    }
    self->state_ = torrent_state::seeding;
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
      if (self->on_finished) self->on_finished();
    }
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
    auto ec = self->disk_.flush();
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
  if (resume_file_.empty()) return;
  resume_data r;
  r.info_hash = resume_key(info_);
  r.pieces = flushed_;
  r.downloaded = total_downloaded();
  r.uploaded = total_uploaded();
  auto bytes = std::make_shared<std::string>(encode_resume(r));
  auto self = shared_from_this();
  // The write is atomic; it runs on the disk pool, after the flush that justified it.
  session_.disk_pool().post([self, bytes] {
    auto ec = save_resume_file(self->resume_file_, *bytes);
    if (ec) {
      asio::post(self->session_.io(),
                 [self, ec] { self->tracker_message_ = "cannot save resume data: " + ec.message(); });
    }
  });
}

void torrent::ban(peer_connection* p, const std::string& why) {
  banned_.insert(p->endpoint());
  if (!p->endpoint().address().is_loopback()) banned_ips_.insert(p->endpoint().address());
  candidates_.erase(p->endpoint());
  p->close("banned: " + why);
}

void torrent::async_read_block(std::uint32_t piece, std::uint32_t begin, std::uint32_t length,
                               std::function<void(std::error_code, std::string)> done) {
  auto self = shared_from_this();
  session_.disk_pool().post([self, piece, begin, length, done = std::move(done)]() mutable {
    std::string data(length, '\0');
    auto ec = self->disk_.read(piece, begin, length, data.data());
    asio::post(self->session_.io(),
               [ec, data = std::move(data), done = std::move(done)]() mutable { done(ec, std::move(data)); });
  });
}

void torrent::fail(const std::string& why) {
  if (state_ == torrent_state::error) return;
  state_ = torrent_state::error;
  error_ = why;
  stop_web_seeds();
  auto copy = peers_;
  for (auto& p : copy)
    p->close("torrent stopped: " + why);
  // Always posted: the owner may set on_error only after add_torrent returns.
  asio::post(session_.io(), [self = shared_from_this(), why] {
    if (self->on_error) self->on_error(why);
  });
}

asio::awaitable<bool> torrent::announce_once(int ev, bool stopping) {
  tracker::announce_request req;
  req.info_hash = wire_hash_;
  req.peer_id = session_.id();
  req.port = session_.port();
  req.uploaded = total_uploaded();
  req.downloaded = total_downloaded();
  req.left = bytes_left();
  req.ev = static_cast<tracker::event>(ev);
  req.key = tracker_key_;
  req.numwant = stopping ? 0 : 50;
  tracker::client_options opt;
  opt.proxy = session_.settings().proxy;
  opt.bind_address = session_.settings().outgoing_address;
  if (stopping) {
    opt.http_timeout = std::chrono::seconds(3);
    opt.udp_attempts = 1;
    opt.udp_base_timeout = std::chrono::milliseconds(2000);
  }
  if (stopping) {
    // Leaving: tell only the tracker that last answered, and give it three seconds in all
    // (name resolution included), so that dead trackers cannot hold up shutdown.
    if (last_tracker_.empty()) co_return false;
    asio::steady_timer limit(session_.io());
    limit.expires_after(std::chrono::seconds(3));
    const std::string url = last_tracker_;
    co_await (tracker::announce(session_.io(), url, req, opt) || limit.async_wait(asio::as_tuple(asio::use_awaitable)));
    co_return true;
  }
  std::string last_error;
  // BEP 12: tiers in order, trackers in a tier in order; the first to answer moves up.
  for (auto& tier : tiers_) {
    for (std::size_t i = 0; i < tier.size(); ++i) {
      const std::string url = tier[i];
      auto r = co_await tracker::announce(session_.io(), url, req, opt);
      if (!r) {
        last_error = r.err().message();
        continue;
      }
      std::rotate(tier.begin(), tier.begin() + static_cast<std::ptrdiff_t>(i),
                  tier.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      std::size_t added = 0;
      for (const auto& ep : r->peers) {
        if (session_.is_self(ep)) continue;
        if (session_.settings().local && !is_local_address(ep.address())) continue;
        add_peer(ep);
        ++added;
      }
      next_announce_ = std::chrono::seconds(std::max(r->interval, r->min_interval.value_or(0)));
      last_tracker_ = url;
      tracker_message_ =
          url + ": " + std::to_string(added) + " peers" + (r->warning.empty() ? "" : " (" + r->warning + ")");
      if (session_.settings().log) session_.settings().log("tracker " + tracker_message_);
      if (!stopping) connect_more();
      co_return true;
    }
  }
  tracker_message_ = last_error;
  if (session_.settings().log) session_.settings().log("tracker error: " + last_error);
  co_return false;
}

asio::awaitable<void> torrent::announce_loop(std::shared_ptr<torrent> self) {
  co_await self->announce_body();
}

asio::awaitable<void> torrent::announce_body() {
  int ev = static_cast<int>(tracker::event::started);
  std::chrono::seconds retry{15};
  while (!stopping_ && state_ != torrent_state::error) {
    if (completed_pending_) {
      ev = static_cast<int>(tracker::event::completed);
      completed_pending_ = false;
    }
    const bool ok = co_await announce_once(ev, false);
    if (stopping_) co_return;
    std::chrono::seconds wait = next_announce_;
    if (ok) {
      ev = static_cast<int>(tracker::event::none);
      retry = std::chrono::seconds(15);
    } else {
      wait = retry;
      retry = std::min(retry * 2, std::chrono::seconds(1800));
    }
    if (completed_pending_) continue;  // finished while announcing: say so at once
    announce_timer_.expires_after(wait);
    co_await announce_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

std::uint64_t torrent::bytes_left() const {
  std::uint64_t left = 0;
  for (std::uint32_t p = 0; p < fs_.num_pieces(); ++p) {
    if (!picker_->have(p) && picker_->priority(p) > 0) left += fs_.piece_size(p);
  }
  return left;
}

torrent_status torrent::status() {
  torrent_status s;
  s.state = state_;
  s.error = error_;
  s.num_pieces = fs_.num_pieces();
  s.pieces_have = picker_->have_bits().count();
  for (std::uint32_t p = 0; p < fs_.num_pieces(); ++p) {
    if (picker_->priority(p) == 0) continue;
    s.total_wanted += fs_.piece_size(p);
    if (picker_->have(p)) s.have_wanted += fs_.piece_size(p);
  }
  s.download_rate = download_meter_.rate();
  s.upload_rate = upload_meter_.rate();
  s.downloaded = downloaded_;
  s.uploaded = uploaded_;
  s.wasted = wasted_;
  s.peers = static_cast<std::uint32_t>(peers_.size());
  for (auto& p : peers_)
    s.seeds += p->is_seed() ? 1 : 0;
  for (auto& ws : web_seeds_) {
    s.web_seeds += ws->dropped() ? 0 : 1;
    s.web_seed_downloaded += ws->downloaded();
  }
  s.hash_failures = hash_failures_;
  s.banned = static_cast<std::uint32_t>(banned_.size());
  s.check_progress = fs_.num_pieces() ? static_cast<double>(check_done_) / fs_.num_pieces() : 1.0;
  s.tracker_message = tracker_message_;
  return s;
}

void torrent::stop(std::function<void()> done) {
  if (stopping_) {
    done();
    return;
  }
  stopping_ = true;
  tick_.cancel();
  announce_timer_.cancel();
  stop_web_seeds();
  auto copy = peers_;
  for (auto& p : copy)
    p->close("stopping");
  // Wait for pieces in the hash/write pipeline, then flush and save resume data.
  auto self = shared_from_this();
  auto waiter = std::make_shared<asio::steady_timer>(session_.io());
  auto step = std::make_shared<std::function<void()>>();
  *step = [self, waiter, step, done] {
    if (self->disk_queue_bytes_ > 0 || self->check_inflight_ > 0) {
      waiter->expires_after(std::chrono::milliseconds(10));
      waiter->async_wait([step](boost::system::error_code) { (*step)(); });
      return;
    }
    auto finish = [self, done, step] {
      self->state_ = self->state_ == torrent_state::error ? self->state_ : torrent_state::stopped;
      *step = nullptr;
      // Tell the trackers we left (briefly), then let the resume write land before done.
      asio::co_spawn(
          self->session_.io(),
          [self, done]() -> asio::awaitable<void> {
            if (self->announced_started_) co_await self->announce_once(static_cast<int>(tracker::event::stopped), true);
            self->session_.disk_pool().post([self, done] { asio::post(self->session_.io(), done); });
          },
          asio::detached);
    };
    if (self->state_ == torrent_state::checking) {
      // Stopped mid-check: what was checked so far is not the whole truth; save nothing,
      // so the next start checks again instead of trusting a partial list.
      finish();
      return;
    }
    if (self->state_ == torrent_state::error) {
      // Keep what was verified, if it can still be synced; otherwise claim nothing new.
      if (!self->disk_.flush()) {
        for (auto p : self->unflushed_)
          self->flushed_.set(p);
      }
      self->unflushed_.clear();
      self->save_resume();
      finish();
      return;
    }
    self->do_flush(finish);
  };
  (*step)();
}

}  // namespace shoal
