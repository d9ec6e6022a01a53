// BEP 52 for a torrent: piece verification by SHA-1 and merkle trees, piece layers fetched
// from peers (v2 magnets), hashes served to peers, and leaf hashes that pin a corrupt block
// to its sender.
#include "session/torrent.hpp"

#include <algorithm>
#include <cstring>

#include "core/merkle.hpp"
#include "session/peer_connection.hpp"
#include "session/session.hpp"

namespace shoal {

namespace {
using clock = std::chrono::steady_clock;
}  // namespace

std::optional<sha256_digest> torrent::layer_hash(std::uint32_t piece) const {
  if (!info_.has_v2()) return std::nullopt;
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * info_.piece_length;
  const file_entry* file = file_at(start);
  if (!file || !file->pieces_root || file->size <= info_.piece_length) return std::nullopt;
  auto layer = info_.piece_layers.find(*file->pieces_root);
  if (layer == info_.piece_layers.end()) return std::nullopt;
  const std::uint64_t idx = (start - file->offset) / info_.piece_length;
  sha256_digest h{};
  std::memcpy(h.data(), layer->second.data() + idx * 32, 32);
  return h;
}

bool torrent::verify_piece(std::uint32_t piece, std::string_view data,
                           const std::optional<sha256_digest>& layer) const {
  if (info_.has_v1()) {
    const sha1_digest h = sha1(data);
    if (std::string_view(info_.v1_piece_hashes).substr(static_cast<std::size_t>(piece) * 20, 20) != as_view(h)) {
      return false;
    }
    if (!info_.has_v2()) return true;
  }
  // v2 (and the v2 side of a hybrid, BEP 52: both must match): the piece's merkle subtree
  // must match the piece layer (or the root, for a file of one piece). The layer's hash was
  // looked up on the network thread (layer_hash): layers arrive there while this runs on
  // the hash pool.
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
  // A hybrid whose layers are not known yet (magnet link, v1-only peers) is checked by v1.
  if (!layer) return info_.has_v1();
  leaves.resize(info_.piece_length / merkle::block_size, sha256_digest{});
  return merkle::root(leaves, sha256_digest{}) == *layer;
}

const file_entry* torrent::file_at(std::uint64_t offset) const {
  // Files lie end to end in offset order: the last non-empty one starting at or before
  // `offset` is the only one that can hold it (a binary search, not a scan per piece).
  const auto& files = fs_->files();
  auto it = std::upper_bound(files.begin(), files.end(), offset,
                             [](std::uint64_t off, const file_entry& f) { return off < f.offset; });
  while (it != files.begin()) {
    const auto& f = *--it;
    if (f.size == 0) continue;
    return !f.pad && offset < f.offset + f.size ? &f : nullptr;
  }
  return nullptr;
}

unsigned torrent::piece_layer_base() const {
  return merkle::log2_exact(info_.piece_length / merkle::block_size);
}

// --- BEP 52 hash exchange ----------------------------------------------------------------

void torrent::setup_layer_fetch() {
  if (!info_.has_v2()) return;
  for (std::uint32_t i = 0; i < fs_->files().size(); ++i) {
    const auto& f = fs_->files()[i];
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
    missing_layers_->emplace(*f.pieces_root, std::move(lf));
  }
}

void torrent::request_hashes(peer_connection* p) {
  if (!p->speaks_v2() || p->closed()) return;
  const auto now = clock::now();
  std::string msgs;
  std::size_t sent = 0;
  for (auto& [root, lf] : *missing_layers_) {
    auto [first, last] = fs_->file_pieces(lf.file);
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
  for (auto& [piece, lc] : *leaf_checks_) {
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
  // Every hash request names a root: a sorted index, built on the first, instead of a
  // scan of the file list per request.
  const auto& files = fs_->files();
  if (roots_.empty()) {
    for (std::uint32_t i = 0; i < files.size(); ++i) {
      if (files[i].pieces_root) roots_.emplace_back(*files[i].pieces_root, i);
    }
    std::sort(roots_.begin(), roots_.end());
    if (roots_.empty()) return std::nullopt;
  }
  auto it = std::lower_bound(roots_.begin(), roots_.end(), std::make_pair(root, std::uint32_t{0}));
  if (it == roots_.end() || it->first != root) return std::nullopt;
  return it->second;
}

std::optional<std::vector<sha256_digest>> torrent::serve_hashes(const wire::hash_request& r) {
  if (!info_.has_v2() || r.base != piece_layer_base() || r.length > wire::max_hash_request_length) return std::nullopt;
  auto layer = info_.piece_layers.find(r.root);
  if (layer == info_.piece_layers.end()) return std::nullopt;
  const auto found = file_with_root(r.root);
  if (!found) return std::nullopt;
  const std::uint32_t fi = *found;
  // Hashes of pieces we have announced (BEP 52), which is what peers may count on.
  auto [first, last] = fs_->file_pieces(fi);
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
  const file_entry& f = fs_->files()[fi];
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
  auto [file_first, file_last] = fs_->file_pieces(fi);
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
      ok = !self->disk_->read(p, 0, n, buf.data());
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
    for (auto& [piece, lc] : *leaf_checks_) {
      if (lc.req == m.req && lc.asked == p) {
        on_leaf_hashes(p, piece, m);
        return;
      }
    }
    return;  // late or unasked: ignored
  }
  auto it = missing_layers_->find(m.req.root);
  if (it == missing_layers_->end()) return;
  auto& lf = it->second;
  if (m.req.base != piece_layer_base() || m.req.length != lf.chunk) return;
  const std::uint32_t c = m.req.index / lf.chunk;
  if (c >= lf.done.size() || lf.done[c]) return;
  if (!merkle::verify(m.hashes, m.req.index, m.req.length, lf.depth, it->first)) {
    lf.asked[c] = nullptr;
    ban(p, "sent piece-layer hashes of '" + fs_->files()[lf.file].path + "' that do not match its merkle root");
    return;
  }
  std::copy_n(m.hashes.begin(), m.req.length, lf.hashes.begin() + m.req.index);
  lf.done[c] = true;
  lf.asked[c] = nullptr;
  if (std::all_of(lf.done.begin(), lf.done.end(), [](bool d) { return d; })) layer_complete(it->first);
}

void torrent::layer_complete(const sha256_digest& root) {
  auto it = missing_layers_->find(root);
  if (it == missing_layers_->end()) return;
  auto& lf = it->second;
  std::string layer;
  layer.reserve(static_cast<std::size_t>(lf.pieces) * 32);
  for (std::uint32_t i = 0; i < lf.pieces; ++i)
    layer.append(as_view(lf.hashes[i]));
  if (session_.settings().log) {
    log("piece layer of '" + fs_->files()[lf.file].path + "' verified (" + std::to_string(lf.pieces) + " hashes)");
  }
  info_.piece_layers[root] = std::move(layer);
  missing_layers_->erase(it);
  if (missing_layers_.view().empty()) {
    for (auto& p : std::vector(peers_)) {
      p->update_interest();
      p->fill_requests();
    }
  }
}

void torrent::on_hash_reject(peer_connection* p, const wire::hash_request& r) {
  if (auto it = missing_layers_->find(r.root); it != missing_layers_->end()) {
    auto& lf = it->second;
    const std::uint32_t c = lf.chunk ? r.index / lf.chunk : 0;
    if (c < lf.asked.size() && lf.asked[c] == p) lf.asked[c] = nullptr;
  }
  for (auto& [piece, lc] : *leaf_checks_) {
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
  auto it = leaf_checks_->find(piece);
  if (it == leaf_checks_->end()) return;
  leaf_check lc = std::move(it->second);
  leaf_checks_->erase(it);
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
  if (!liars.empty()) suspects_->erase(piece);
}

void torrent::ban_endpoint(const tcp::endpoint& ep, const std::string& why) {
  banned_->insert(ep);
  for (auto& q : std::vector(peers_)) {
    if (q->endpoint() == ep) {
      ban(q.get(), why);
      return;
    }
  }
  if (session_.settings().log) {
    log("banned " + ep.address().to_string() + ":" + std::to_string(ep.port()) + ": " + why);
  }
}

}  // namespace shoal
