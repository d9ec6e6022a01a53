#include "session/piece_picker.hpp"

#include <algorithm>
#include <numeric>

namespace shoal {

piece_picker::piece_picker(std::uint32_t n, std::function<std::uint32_t(std::uint32_t)> piece_size, std::uint64_t seed)
    : n_(n), piece_size_(std::move(piece_size)), have_(n), prio_(n, 1), avail_(n, 0), rank_(n) {
  // The engine lives only here: kept as a member it cost 2.5 KiB per torrent.
  std::mt19937_64 rng(seed);
  std::iota(rank_.begin(), rank_.end(), 0u);
  std::shuffle(rank_.begin(), rank_.end(), rng);
  wanted_ = wanted_missing_ = n;
}

void piece_picker::set_have(std::uint32_t p) {
  if (have_.get(p)) return;
  have_.set(p);
  if (prio_[p] > 0) --wanted_missing_;
  if (auto it = partial_.find(p); it != partial_.end()) {
    partial_.erase(it);
    partial_order_.erase(std::find(partial_order_.begin(), partial_order_.end(), p));
  }
}

void piece_picker::clear_have(std::uint32_t p) {
  if (!have_.get(p)) return;
  have_.clear(p);
  if (prio_[p] > 0) {
    ++wanted_missing_;
    ++wanted_gen_;
  }
  dirty_ = true;
}

void piece_picker::set_priority(std::uint32_t p, std::uint8_t prio) {
  if ((prio_[p] > 0) != (prio > 0)) {
    const std::int64_t d = prio > 0 ? 1 : -1;
    wanted_ += d;
    if (!have_.get(p)) wanted_missing_ += d;
    if (prio > 0) ++wanted_gen_;
  }
  prio_[p] = prio;
  dirty_ = true;
}

void piece_picker::add_peer(const bitfield& has, bool as_seed) {
  if (as_seed) {
    ++seeds_;
    return;
  }
  for (std::uint32_t p = 0; p < n_; ++p)
    avail_[p] += has.get(p) ? 1 : 0;
  dirty_ = true;
}

void piece_picker::remove_peer(const bitfield& has, bool as_seed) {
  if (as_seed) {
    --seeds_;
    return;
  }
  for (std::uint32_t p = 0; p < n_; ++p)
    avail_[p] -= has.get(p) ? 1 : 0;
  dirty_ = true;
}

void piece_picker::add_have(std::uint32_t p) {
  ++avail_[p];
  dirty_ = true;
}

bool piece_picker::interesting(const bitfield& peer_has, bool peer_is_seed) const {
  if (wanted_missing_ == 0) return false;
  if (peer_is_seed || peer_has.all()) return true;
  for (std::uint32_t p = 0; p < n_; ++p) {
    if (peer_has.get(p) && wanted(p)) return true;
  }
  return false;
}

bool piece_picker::interesting(const bitfield& peer_has, bool peer_is_seed, interest_cursor& c) const {
  if (wanted_missing_ == 0) return false;
  if (peer_is_seed || peer_has.all()) return true;
  if (c.gen != wanted_gen_) {
    c.gen = wanted_gen_;
    c.next = 0;
  }
  for (; c.next < n_; ++c.next) {
    if (peer_has.get(c.next) && wanted(c.next)) return true;
  }
  return false;
}

void piece_picker::rebuild_order() {
  order_.clear();
  for (std::uint32_t p = 0; p < n_; ++p) {
    if (wanted(p)) order_.push_back(p);
  }
  const bool random = have_.count() < random_first_pieces && !sequential_;
  std::sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (prio_[a] != prio_[b]) return prio_[a] > prio_[b];
    if (sequential_) return a < b;
    if (!random && avail_[a] != avail_[b]) return avail_[a] < avail_[b];
    return rank_[a] < rank_[b];
  });
  order_start_ = 0;
  dirty_ = false;
}

block_ref piece_picker::block_of(std::uint32_t p, std::uint32_t i) const {
  const std::uint32_t size = piece_size_(p);
  const std::uint32_t begin = i * block_size;
  return {p, begin, std::min(block_size, size - begin)};
}

piece_picker::partial& piece_picker::start(std::uint32_t p) {
  partial& pp = partial_[p];
  const std::uint32_t nb = blocks_in(p);
  pp.state.assign(nb, 0);
  pp.requests.assign(nb, 0);
  pp.free = nb;
  if (pad_block_) {
    for (std::uint32_t i = 0; i < nb; ++i) {
      if (pad_block_(p, i)) {
        pp.state[i] = 2;
        --pp.free;
        ++pp.received;
      }
    }
  }
  partial_order_.push_back(p);
  return pp;
}

void piece_picker::pick(const bitfield& peer_has, bool peer_is_seed, std::uint32_t count,
                        const std::function<bool(const block_ref&)>& mine, std::vector<block_ref>& out,
                        std::uint32_t queued) {
  if (count == 0 || wanted_missing_ == 0) return;
  auto has = [&](std::uint32_t p) { return peer_is_seed || peer_has.get(p); };
  // 0. Time-critical pieces, most urgent first: their free blocks, then (for the most
  // urgent few) blocks another peer was asked for and has not sent yet.
  if (!critical_.empty()) {
    std::size_t urgent = 0;
    for (std::uint32_t p : critical_) {
      if (!wanted(p)) continue;
      const bool head = urgent++ < critical_duplicates;
      if (!has(p)) continue;
      auto it = partial_.find(p);
      partial& pp = it != partial_.end() ? it->second : start(p);
      if (pp.free == 0 && !head) continue;
      for (std::uint32_t i = 0; i < pp.state.size(); ++i) {
        if (pp.state[i] == 2) continue;
        const block_ref b = block_of(p, i);
        if (pp.state[i] == 0 || (head && pp.requests[i] < 2 && queued < end_game_queue && !mine(b))) {
          out.push_back(b);
          if (--count == 0) return;
        }
      }
    }
  }
  // 1. Free blocks of partial pieces, oldest piece first.
  for (std::uint32_t p : partial_order_) {
    if (!has(p) || prio_[p] == 0) continue;
    partial& pp = partial_[p];
    if (!critical_.empty() && is_critical(p)) continue;  // taken above
    for (std::uint32_t i = 0; i < pp.state.size() && pp.free > 0; ++i) {
      if (pp.state[i] != 0) continue;
      out.push_back(block_of(p, i));
      if (--count == 0) return;
    }
  }
  // 2. New pieces, in the picker's order. Pieces had or started only ever leave the
  // candidates until the next rebuild, so a cursor skips them for every peer at once.
  if (dirty_) rebuild_order();
  while (order_start_ < order_.size() && (!wanted(order_[order_start_]) || partial_.count(order_[order_start_]) != 0)) {
    ++order_start_;
  }
  for (std::size_t k = order_start_; k < order_.size(); ++k) {
    const std::uint32_t p = order_[k];
    if (!wanted(p) || !has(p) || partial_.count(p) != 0) continue;
    if (partial_.size() >= max_partial_) return;  // the memory bound of started pieces
    partial& pp = start(p);
    for (std::uint32_t i = 0; i < pp.state.size(); ++i) {
      if (pp.state[i] != 0) continue;
      out.push_back(block_of(p, i));
      if (--count == 0) return;
    }
  }
  // 3. End game: nothing free is left, so ask for blocks others are fetching.
  if (order_start_ < order_.size()) return;  // untouched pieces remain (the peer lacks them)
  for (const auto& [p, pp] : partial_) {
    if (pp.free > 0 && prio_[p] > 0) return;
  }
  end_game_ = true;
  if (queued >= end_game_queue) return;
  count = std::min(count, end_game_queue - queued);
  for (std::uint32_t p : partial_order_) {
    if (!has(p) || prio_[p] == 0) continue;
    partial& pp = partial_[p];
    for (std::uint32_t i = 0; i < pp.state.size(); ++i) {
      if (pp.state[i] != 1 || pp.requests[i] >= 2) continue;
      block_ref b = block_of(p, i);
      if (mine(b)) continue;
      out.push_back(b);
      if (--count == 0) return;
    }
  }
}

bool piece_picker::take_piece(std::uint32_t p, std::vector<block_ref>& out) {
  if (p >= n_ || !untouched(p) || partial_.size() >= max_partial_) return false;
  partial& pp = start(p);
  for (std::uint32_t i = 0; i < pp.state.size(); ++i) {
    if (pp.state[i] == 0) out.push_back(block_of(p, i));
  }
  return true;
}

void piece_picker::mark_requested(const block_ref& b) {
  auto it = partial_.find(b.piece);
  if (it == partial_.end()) return;
  partial& pp = it->second;
  const std::uint32_t i = b.begin / block_size;
  if (pp.state[i] == 0) {
    pp.state[i] = 1;
    --pp.free;
  }
  if (pp.requests[i] < 255) ++pp.requests[i];
}

void piece_picker::abort_request(const block_ref& b) {
  auto it = partial_.find(b.piece);
  if (it == partial_.end()) return;
  partial& pp = it->second;
  const std::uint32_t i = b.begin / block_size;
  if (pp.requests[i] > 0) --pp.requests[i];
  if (pp.state[i] == 1 && pp.requests[i] == 0) {
    pp.state[i] = 0;
    ++pp.free;
  }
}

bool piece_picker::mark_received(const block_ref& b) {
  auto it = partial_.find(b.piece);
  if (it == partial_.end()) return false;
  partial& pp = it->second;
  const std::uint32_t i = b.begin / block_size;
  if (i >= pp.state.size() || pp.state[i] == 2) return false;
  if (pp.state[i] == 0) --pp.free;
  pp.state[i] = 2;
  if (pp.requests[i] > 0) --pp.requests[i];
  ++pp.received;
  return true;
}

bool piece_picker::piece_received(std::uint32_t p) const {
  auto it = partial_.find(p);
  return it != partial_.end() && it->second.received == it->second.state.size();
}

void piece_picker::set_critical(std::vector<std::uint32_t> pieces) {
  // Called each time a reader enters another piece: linear in the list, no search in it.
  if (pieces.empty() && critical_.empty()) return;
  if (critical_bits_.size() != n_) critical_bits_ = bitfield(n_);
  for (std::uint32_t p : critical_)
    critical_bits_.clear(p);
  critical_.clear();
  for (std::uint32_t p : pieces) {
    if (critical_.size() >= max_critical) break;
    if (p < n_ && !critical_bits_.get(p)) {
      critical_bits_.set(p);
      critical_.push_back(p);
    }
  }
}

std::optional<std::uint32_t> piece_picker::critical_untouched() const {
  for (std::uint32_t p : critical_) {
    if (untouched(p)) return p;
  }
  return std::nullopt;
}

void piece_picker::piece_passed(std::uint32_t p) {
  set_have(p);
}

void piece_picker::piece_failed(std::uint32_t p) {
  auto it = partial_.find(p);
  if (it == partial_.end()) return;
  partial& pp = it->second;
  for (std::uint32_t i = 0; i < pp.state.size(); ++i) {
    if (pp.state[i] == 2) {
      pp.state[i] = 0;
      ++pp.free;
    }
  }
  pp.received = 0;
  if (pad_block_) {
    for (std::uint32_t i = 0; i < pp.state.size(); ++i) {
      if (pad_block_(p, i) && pp.state[i] == 0) {
        pp.state[i] = 2;
        --pp.free;
        ++pp.received;
      }
    }
  }
  end_game_ = false;
}

}  // namespace shoal
