#include "session/torrent.hpp"

#include <algorithm>
#include <cstring>
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

sha1_digest truncated_v2(const metainfo& m) {
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
      v2_wire_hash_(info_.has_v1() && info_.has_v2() ? std::optional<sha1_digest>(truncated_v2(info_)) : std::nullopt),
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
  // v2 files without their piece layer (a magnet link gives only the info dictionary):
  // the layers come from peers (BEP 52 hash requests) before any block is requested.
  setup_layer_fetch();
  if (!missing_layers_.empty() && session_.settings().log) {
    session_.settings().log("fetching the piece layers of " + std::to_string(missing_layers_.size()) +
                            " file(s) from peers (BEP 52)");
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
    if (std::string_view(info_.v1_piece_hashes).substr(static_cast<std::size_t>(piece) * 20, 20) != as_view(h)) {
      return false;
    }
    if (!info_.has_v2()) return true;
  }
  // v2 (and the v2 side of a hybrid, BEP 52: both must match): the piece's merkle subtree
  // must match the piece layer (or the root, for a file of one piece).
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * info_.piece_length;
  const file_entry* file = file_at(start);
  if (!file || !file->pieces_root) return info_.has_v1();  // a hybrid's pad-only piece
  // Only the file's own bytes are hashed (a hybrid's pad bytes after them are not).
  data =
      data.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), file->offset + file->size - start)));
  std::vector<sha256_digest> leaves;
  for (std::size_t off = 0; off < data.size(); off += merkle::block_size) {
    leaves.push_back(sha256(data.substr(off, merkle::block_size)));
  }
  if (file->size <= info_.piece_length) return merkle::root(leaves, sha256_digest{}) == *file->pieces_root;
  auto layer = info_.piece_layers.find(*file->pieces_root);
  // A hybrid whose layers are not known yet (magnet link, v1-only peers) is checked by v1.
  if (layer == info_.piece_layers.end()) return info_.has_v1();
  leaves.resize(info_.piece_length / merkle::block_size, sha256_digest{});
  const sha256_digest got = merkle::root(leaves, sha256_digest{});
  const std::uint64_t idx = (start - file->offset) / info_.piece_length;
  return std::string_view(layer->second).substr(idx * 32, 32) == as_view(got);
}

const file_entry* torrent::file_at(std::uint64_t offset) const {
  for (const auto& f : fs_.files()) {
    if (!f.pad && f.size > 0 && f.offset <= offset && offset < f.offset + f.size) return &f;
  }
  return nullptr;
}

unsigned torrent::piece_layer_base() const {
  return merkle::log2_exact(info_.piece_length / merkle::block_size);
}

// --- BEP 52 hash exchange ----------------------------------------------------------------

void torrent::setup_layer_fetch() {
  if (!info_.has_v2()) return;
  for (std::uint32_t i = 0; i < fs_.files().size(); ++i) {
    const auto& f = fs_.files()[i];
    if (!f.pieces_root || f.size <= info_.piece_length || info_.piece_layers.count(*f.pieces_root) != 0) continue;
    layer_fetch lf;
    lf.file = i;
    lf.pieces = static_cast<std::uint32_t>((f.size + info_.piece_length - 1) / info_.piece_length);
    lf.depth = merkle::log2_exact(lf.pieces);
    lf.chunk = std::min<std::uint32_t>(wire::max_hash_request_length, std::uint32_t{1} << lf.depth);
    const std::uint32_t chunks = (lf.pieces + lf.chunk - 1) / lf.chunk;
    lf.hashes.resize(static_cast<std::size_t>(chunks) * lf.chunk);
    lf.done.assign(chunks, false);
    lf.asked.assign(chunks, nullptr);
    lf.asked_at.resize(chunks);
    missing_layers_.emplace(*f.pieces_root, std::move(lf));
  }
}

void torrent::request_hashes(peer_connection* p) {
  if (!p->speaks_v2() || p->closed()) return;
  const auto now = clock::now();
  std::string msgs;
  std::size_t sent = 0;
  for (auto& [root, lf] : missing_layers_) {
    auto [first, last] = fs_.file_pieces(lf.file);
    for (std::uint32_t c = 0; c < lf.done.size() && sent < 16; ++c) {
      if (lf.done[c]) continue;
      if (lf.asked[c] && now - lf.asked_at[c] < std::chrono::seconds(10)) continue;
      // BEP 52: ask for hashes of pieces the peer has announced.
      const std::uint32_t a = first + c * lf.chunk, b = std::min(last, a + lf.chunk);
      bool has_all = true;
      for (std::uint32_t i = a; i < b && has_all; ++i)
        has_all = p->has().get(i);
      if (!has_all) continue;
      wire::hash_request r;
      r.root = root;
      r.base = piece_layer_base();
      r.index = c * lf.chunk;
      r.length = lf.chunk;
      r.proof_layers = merkle::proof_layers_for(lf.depth);
      wire::put_hash_request(msgs, wire::msg::hash_request, r);
      lf.asked[c] = p;
      lf.asked_at[c] = now;
      ++sent;
    }
  }
  for (auto& [piece, lc] : leaf_checks_) {
    if (lc.asked && now - lc.asked_at < std::chrono::seconds(5)) continue;
    if (!p->has().get(piece) || p->closed()) continue;
    // Any v2 peer with the piece may answer (its hashes are checked against the piece
    // layer, so a sender cannot clear itself); one not yet tried goes first.
    if (lc.tried.count(p->endpoint()) != 0 && std::any_of(peers_.begin(), peers_.end(), [&](const auto& q) {
          return q->speaks_v2() && !q->closed() && q->has().get(piece) && lc.tried.count(q->endpoint()) == 0;
        })) {
      continue;
    }
    wire::put_hash_request(msgs, wire::msg::hash_request, lc.req);
    lc.asked = p;
    lc.asked_at = now;
    lc.tried.insert(p->endpoint());
  }
  if (!msgs.empty()) p->send_message(std::move(msgs));
}

std::optional<std::uint32_t> torrent::file_with_root(const sha256_digest& root) const {
  for (std::uint32_t i = 0; i < fs_.files().size(); ++i) {
    if (fs_.files()[i].pieces_root == root) return i;
  }
  return std::nullopt;
}

std::optional<std::vector<sha256_digest>> torrent::serve_hashes(const wire::hash_request& r) {
  if (!info_.has_v2() || r.base != piece_layer_base() || r.length > wire::max_hash_request_length) return std::nullopt;
  auto layer = info_.piece_layers.find(r.root);
  if (layer == info_.piece_layers.end()) return std::nullopt;
  const auto found = file_with_root(r.root);
  if (!found) return std::nullopt;
  const std::uint32_t fi = *found;
  // Hashes of pieces we have announced (BEP 52), which is what peers may count on.
  auto [first, last] = fs_.file_pieces(fi);
  for (std::uint64_t i = first + static_cast<std::uint64_t>(r.index);
       i < std::min<std::uint64_t>(last, first + static_cast<std::uint64_t>(r.index) + r.length); ++i) {
    if (!picker_->have_bits().get(static_cast<std::uint32_t>(i))) return std::nullopt;
  }
  auto h = merkle::proof(*layer_tree(r.root), r.index, r.length, r.proof_layers);
  if (h.empty()) return std::nullopt;
  return h;
}

const std::vector<std::vector<sha256_digest>>* torrent::layer_tree(const sha256_digest& root) {
  auto layer = info_.piece_layers.find(root);
  if (layer == info_.piece_layers.end()) return nullptr;
  auto& tree = layer_trees_[root];
  if (tree.empty()) {
    std::vector<sha256_digest> base(layer->second.size() / 32);
    for (std::size_t i = 0; i < base.size(); ++i)
      std::memcpy(base[i].data(), layer->second.data() + i * 32, 32);
    tree = merkle::layers_above(base, merkle::pad_hash(piece_layer_base()));
  }
  return &tree;
}

void torrent::serve_leaf_hashes(const wire::hash_request& r,
                                std::function<void(std::optional<std::vector<sha256_digest>>)> done) {
  auto reject = [&] { asio::post(session_.io(), [done] { done(std::nullopt); }); };
  if (!info_.has_v2() || r.base != 0 || r.length > wire::max_hash_request_length) return reject();
  const auto found = file_with_root(r.root);
  if (!found) return reject();
  const std::uint32_t fi = *found;
  const file_entry& f = fs_.files()[fi];
  const std::uint64_t bpp = info_.piece_length / merkle::block_size;
  const std::uint64_t file_blocks = (f.size + merkle::block_size - 1) / merkle::block_size;
  const bool one_piece = f.size <= info_.piece_length;
  // Leaves in the tree: a one-piece file pads its blocks to a power of two; otherwise
  // every piece has bpp leaves.
  const std::uint64_t width = one_piece
                                  ? (std::uint64_t{1} << merkle::log2_exact(std::max<std::uint64_t>(file_blocks, 1)))
                                  : ((f.size + info_.piece_length - 1) / info_.piece_length) * bpp;
  if (static_cast<std::uint64_t>(r.index) + r.length > std::max<std::uint64_t>(width, 2)) return reject();
  const std::vector<std::vector<sha256_digest>>* upper = nullptr;
  if (!one_piece) {
    upper = layer_tree(r.root);
    if (!upper) return reject();
  }
  // The pieces the range touches (the whole piece when the range is inside one).
  auto [file_first, file_last] = fs_.file_pieces(fi);
  const std::uint32_t pa = file_first + static_cast<std::uint32_t>(r.index / bpp);
  const std::uint32_t pb = std::min<std::uint32_t>(
      file_last,
      file_first + static_cast<std::uint32_t>((static_cast<std::uint64_t>(r.index) + r.length - 1) / bpp) + 1);
  for (std::uint32_t p = pa; p < pb; ++p) {
    if (!picker_->have_bits().get(p)) return reject();
  }
  const unsigned hp = piece_layer_base();
  auto self = shared_from_this();
  const std::uint64_t file_end = f.offset + f.size;
  session_.disk_pool().post([self, r, done, pa, pb, bpp, hp, one_piece, width, file_end, upper]() mutable {
    // Leaves of pieces [pa, pb), zero hashes past the file's end.
    std::vector<sha256_digest> leaves;
    std::string buf;
    bool ok = true;
    for (std::uint32_t p = pa; p < pb && ok; ++p) {
      const std::uint64_t start = static_cast<std::uint64_t>(p) * self->info_.piece_length;
      const std::uint64_t n = std::min<std::uint64_t>(self->info_.piece_length, file_end - start);
      buf.resize(static_cast<std::size_t>(n));
      ok = !self->disk_.read(p, 0, n, buf.data());
      for (std::uint64_t b = 0; b < (one_piece ? width : bpp) && ok; ++b) {
        const std::uint64_t off = b * merkle::block_size;
        leaves.push_back(off < n ? sha256(std::string_view(buf).substr(
                                       static_cast<std::size_t>(off),
                                       static_cast<std::size_t>(std::min<std::uint64_t>(merkle::block_size, n - off))))
                                 : sha256_digest{});
      }
    }
    std::optional<std::vector<sha256_digest>> out;
    if (ok) {
      // Local layers over the pieces read: level j of leaves [first_leaf, ...).
      const std::uint64_t first_leaf = one_piece ? 0 : (r.index / bpp) * bpp;
      auto local = merkle::layers_above(leaves, sha256_digest{});
      const unsigned k = merkle::log2_exact(r.length);
      const unsigned local_top = merkle::log2_exact(std::max<std::uint64_t>(leaves.size(), 2));
      const unsigned depth = one_piece ? local_top : hp + static_cast<unsigned>(upper->size() - 1);
      std::vector<sha256_digest> h(local[0].begin() + static_cast<std::ptrdiff_t>(r.index - first_leaf),
                                   local[0].begin() + static_cast<std::ptrdiff_t>(r.index - first_leaf + r.length));
      const std::uint64_t wanted = r.proof_layers + 1 > k ? r.proof_layers + 1 - k : 0;
      const std::uint64_t uncles = std::min<std::uint64_t>(wanted, depth > k ? depth - k : 0);
      for (std::uint64_t j = k; j < k + uncles; ++j) {
        const std::uint64_t pos = (static_cast<std::uint64_t>(r.index) >> j) ^ 1;
        if (one_piece || j < hp) {
          const std::uint64_t local_pos = pos - (first_leaf >> j);
          if (j >= local.size() || local_pos >= local[j].size()) {
            ok = false;
            break;
          }
          h.push_back(local[j][local_pos]);
        } else {
          const auto& lvl = (*upper)[j - hp];
          if (pos >= lvl.size()) {
            ok = false;
            break;
          }
          h.push_back(lvl[pos]);
        }
      }
      if (ok) out = std::move(h);
    }
    asio::post(self->session_.io(), [done, out = std::move(out)]() mutable { done(std::move(out)); });
  });
}

void torrent::on_hashes(peer_connection* p, const wire::hashes_message& m) {
  if (m.req.base == 0) {
    for (auto& [piece, lc] : leaf_checks_) {
      if (lc.req == m.req && lc.asked == p) {
        on_leaf_hashes(p, piece, m);
        return;
      }
    }
    return;  // late or unasked: ignored
  }
  auto it = missing_layers_.find(m.req.root);
  if (it == missing_layers_.end()) return;
  auto& lf = it->second;
  if (m.req.base != piece_layer_base() || m.req.length != lf.chunk) return;
  const std::uint32_t c = m.req.index / lf.chunk;
  if (c >= lf.done.size() || lf.done[c]) return;
  if (!merkle::verify(m.hashes, m.req.index, m.req.length, lf.depth, it->first)) {
    lf.asked[c] = nullptr;
    ban(p, "sent piece-layer hashes of '" + fs_.files()[lf.file].path + "' that do not match its merkle root");
    return;
  }
  std::copy_n(m.hashes.begin(), m.req.length, lf.hashes.begin() + m.req.index);
  lf.done[c] = true;
  lf.asked[c] = nullptr;
  if (std::all_of(lf.done.begin(), lf.done.end(), [](bool d) { return d; })) layer_complete(it->first);
}

void torrent::layer_complete(const sha256_digest& root) {
  auto it = missing_layers_.find(root);
  if (it == missing_layers_.end()) return;
  auto& lf = it->second;
  std::string layer;
  layer.reserve(static_cast<std::size_t>(lf.pieces) * 32);
  for (std::uint32_t i = 0; i < lf.pieces; ++i)
    layer.append(as_view(lf.hashes[i]));
  if (session_.settings().log) {
    session_.settings().log("piece layer of '" + fs_.files()[lf.file].path + "' verified (" +
                            std::to_string(lf.pieces) + " hashes)");
  }
  info_.piece_layers[root] = std::move(layer);
  missing_layers_.erase(it);
  if (missing_layers_.empty()) {
    for (auto& p : std::vector(peers_)) {
      p->update_interest();
      p->fill_requests();
    }
  }
}

void torrent::on_hash_reject(peer_connection* p, const wire::hash_request& r) {
  if (auto it = missing_layers_.find(r.root); it != missing_layers_.end()) {
    auto& lf = it->second;
    const std::uint32_t c = lf.chunk ? r.index / lf.chunk : 0;
    if (c < lf.asked.size() && lf.asked[c] == p) lf.asked[c] = nullptr;
  }
  for (auto& [piece, lc] : leaf_checks_) {
    if (lc.req == r && lc.asked == p) lc.asked = nullptr;
  }
}

void torrent::start_leaf_check(std::uint32_t piece, const piece_buffer& buf) {
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * info_.piece_length;
  const file_entry* f = file_at(start);
  if (!f || !f->pieces_root) return;
  const std::uint64_t bytes = std::min<std::uint64_t>(buf.size, f->offset + f->size - start);
  const auto nblocks = static_cast<std::uint32_t>((bytes + merkle::block_size - 1) / merkle::block_size);
  leaf_check lc;
  lc.req.root = *f->pieces_root;
  lc.req.base = 0;
  lc.req.proof_layers = 0;
  if (f->size <= info_.piece_length) {
    lc.req.index = 0;
    lc.req.length = std::uint32_t{1} << merkle::log2_exact(std::max<std::uint32_t>(nblocks, 2));
    lc.expect = *f->pieces_root;
  } else {
    auto layer = info_.piece_layers.find(*f->pieces_root);
    if (layer == info_.piece_layers.end()) return;
    const std::uint64_t idx = (start - f->offset) / info_.piece_length;
    lc.req.length = static_cast<std::uint32_t>(info_.piece_length / merkle::block_size);
    lc.req.index = static_cast<std::uint32_t>(idx * lc.req.length);
    std::memcpy(lc.expect.data(), layer->second.data() + idx * 32, 32);
  }
  if (lc.req.length < 2 || nblocks < 2) return;  // one block: one sender, already pinned
  for (std::uint32_t b = 0; b < nblocks; ++b) {
    const std::uint64_t off = static_cast<std::uint64_t>(b) * merkle::block_size;
    lc.blocks.push_back(sha256(
        buf.data().substr(off, static_cast<std::size_t>(std::min<std::uint64_t>(merkle::block_size, bytes - off)))));
    // Blocks are the picker's 16 KiB blocks: sender i sent block i.
    lc.senders.push_back(b < buf.sender_eps.size() ? buf.sender_eps[b] : tcp::endpoint{});
  }
  leaf_checks_[piece] = std::move(lc);
  for (auto& p : std::vector(peers_))
    request_hashes(p.get());
}

void torrent::on_leaf_hashes(peer_connection* p, std::uint32_t piece, const wire::hashes_message& m) {
  auto it = leaf_checks_.find(piece);
  if (it == leaf_checks_.end()) return;
  leaf_check lc = std::move(it->second);
  leaf_checks_.erase(it);
  std::vector<sha256_digest> level(m.hashes.begin(), m.hashes.begin() + m.req.length);
  while (level.size() > 1)
    merkle::reduce_level(level, sha256_digest{});
  if (level[0] != lc.expect) {
    ban(p, "sent block hashes of piece " + std::to_string(piece) + " that do not match the piece layer");
    return;
  }
  std::set<tcp::endpoint> liars;
  for (std::size_t i = 0; i < lc.blocks.size() && i < m.req.length; ++i) {
    if (lc.blocks[i] != m.hashes[i] && i < lc.senders.size() && lc.senders[i] != tcp::endpoint{}) {
      liars.insert(lc.senders[i]);
    }
  }
  for (const auto& ep : liars) {
    ban_endpoint(ep, "block of piece " + std::to_string(piece) + " does not match its merkle leaf hash");
  }
  // Pinned: the v1-style wait for a good copy is not needed for these.
  if (!liars.empty()) suspects_.erase(piece);
}

void torrent::ban_endpoint(const tcp::endpoint& ep, const std::string& why) {
  banned_.insert(ep);
  for (auto& q : std::vector(peers_)) {
    if (q->endpoint() == ep) {
      ban(q.get(), why);
      return;
    }
  }
  if (session_.settings().log) {
    session_.settings().log("banned " + ep.address().to_string() + ":" + std::to_string(ep.port()) + ": " + why);
  }
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
        // Hash requests that timed out or were rejected go to another peer.
        if (!t->missing_layers_.empty() || !t->leaf_checks_.empty()) {
          for (auto& p : std::vector(t->peers_))
            t->request_hashes(p.get());
        }
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
  if (is_banned(p->endpoint())) return false;
  // Per-IP limit; on loopback every peer shares the address, so count address+port there.
  const auto& ep = p->endpoint();
  std::uint32_t same = 0;
  for (auto& q : peers_) {
    if (ep.address().is_loopback() ? q->endpoint() == ep : q->endpoint().address() == ep.address()) ++same;
  }
  if (same >= session_.settings().max_peers_per_ip) return false;
  if (peers_.size() >= session_.settings().max_peers_per_torrent) {
    // Full: an idle connection (handshaked long ago, nothing exchanged, no interest) makes
    // room, so connections that only handshake cannot keep real peers out.
    const auto now = clock::now();
    auto idle = std::find_if(peers_.begin(), peers_.end(),
                             [&](auto& q) { return q->evictable(now, session_.settings().idle_eviction); });
    if (idle == peers_.end()) return false;
    auto victim = *idle;
    victim->close("evicted for a new peer: idle");
    if (peers_.size() >= session_.settings().max_peers_per_torrent) return false;
  }
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
  for (auto& [root, lf] : missing_layers_) {
    for (auto& a : lf.asked) {
      if (a == p) a = nullptr;
    }
  }
  for (auto& [piece, lc] : leaf_checks_) {
    if (lc.asked == p) lc.asked = nullptr;
  }
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

void torrent::penalize(const tcp::endpoint& ep) {
  auto& f = failed_[ep];
  f.when = clock::now();
  f.count = std::min<std::uint32_t>(f.count + 1, max_failures - 1);
}

void torrent::ban(peer_connection* p, const std::string& why) {
  banned_.insert(p->endpoint());
  if (!p->endpoint().address().is_loopback()) banned_ips_.insert(p->endpoint().address());
  candidates_.erase(p->endpoint());
  p->close("banned: " + why);
}

std::uint64_t torrent::served_piece_size(std::uint32_t piece) const {
  // libtorrent pads every file of a v2-only torrent to a whole piece (the last one too), so
  // it asks for full blocks of a file's last piece: the bytes past the file read as zeros.
  if (!info_.has_v1()) return info_.piece_length;
  return fs_.piece_size(piece);
}

void torrent::async_read_block(std::uint32_t piece, std::uint32_t begin, std::uint32_t length,
                               std::function<void(std::error_code, std::string)> done) {
  auto self = shared_from_this();
  // Past the end of a piece's data (a v2 file's padded last piece, see served_piece_size)
  // the bytes are zeros.
  const std::uint64_t real = fs_.piece_size(piece);
  const auto n = static_cast<std::uint32_t>(begin >= real ? 0 : std::min<std::uint64_t>(length, real - begin));
  session_.disk_pool().post([self, piece, begin, length, n, done = std::move(done)]() mutable {
    std::string data(length, '\0');
    auto ec = n ? self->disk_.read(piece, begin, n, data.data()) : std::error_code{};
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
    if (v2_wire_hash_) {
      req.info_hash = *v2_wire_hash_;
      limit.expires_after(std::chrono::seconds(1));
      co_await (tracker::announce(session_.io(), url, req, opt) ||
                limit.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
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
      // A hybrid is announced in its v2 swarm too (BEP 52), to the tracker that answered.
      auto peers = r->peers;
      if (v2_wire_hash_) {
        auto req2 = req;
        req2.info_hash = *v2_wire_hash_;
        auto r2 = co_await tracker::announce(session_.io(), url, req2, opt);
        if (r2) peers.insert(peers.end(), r2->peers.begin(), r2->peers.end());
      }
      std::size_t added = 0;
      for (const auto& ep : peers) {
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
