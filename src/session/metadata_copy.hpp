// A magnet link's info dictionary as it arrives over a peer connection (BEP 9): each peer
// that offers it fills a copy of its own, kept as the 16 KiB pieces that arrived (nothing
// allocated at the size a peer claims). Every copy of a torrent is charged to one budget,
// so no number of peers claiming huge sizes can make the copies outgrow it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.hpp"
#include "wire/metadata.hpp"

namespace shoal {

// Bytes all copies of one torrent may hold together.
inline constexpr std::uint64_t max_metadata_buffered = wire::max_metadata_size + (4u << 20);

struct metadata_budget {
  std::uint64_t buffered = 0;
};

class metadata_copy {
 public:
  metadata_copy(std::shared_ptr<metadata_budget> b, std::uint64_t size)
      : budget_(std::move(b)), size_(size), pieces_(wire::metadata_pieces(size)) {}
  ~metadata_copy() { budget_->buffered -= charged_; }
  metadata_copy(const metadata_copy&) = delete;
  metadata_copy& operator=(const metadata_copy&) = delete;

  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] std::uint32_t pieces() const { return static_cast<std::uint32_t>(pieces_.size()); }
  [[nodiscard]] std::uint32_t have() const { return have_; }
  [[nodiscard]] bool complete() const { return have_ == pieces_.size(); }
  // The bytes piece `i` must have.
  [[nodiscard]] std::uint64_t piece_size(std::uint32_t i) const {
    const std::uint64_t off = static_cast<std::uint64_t>(i) * wire::metadata_piece_size;
    return std::min<std::uint64_t>(wire::metadata_piece_size, size_ - std::min(size_, off));
  }
  // Stores a piece (a repeat is ignored); false if the budget cannot take it.
  bool put(std::uint32_t i, std::string_view data) {
    auto& slot = pieces_[i];
    if (!slot.empty() || data.empty()) return true;
    if (budget_->buffered + data.size() > max_metadata_buffered) return false;
    slot.assign(data.data(), data.size());
    budget_->buffered += data.size();
    charged_ += data.size();
    ++have_;
    return true;
  }
  // True if the joined pieces hash to the link's info-hashes (each one given).
  [[nodiscard]] bool matches(const std::optional<sha1_digest>& v1, const std::optional<sha256_digest>& v2) const {
    if (!v1 && !v2) return false;
    hasher h1(hasher::algo::sha1), h2(hasher::algo::sha256);
    for (const auto& piece : pieces_) {
      if (v1) h1.update(piece);
      if (v2) h2.update(piece);
    }
    if (v1) {
      sha1_digest d;
      h1.final(d.data());
      if (d != *v1) return false;
    }
    if (v2) {
      sha256_digest d;
      h2.final(d.data());
      if (d != *v2) return false;
    }
    return true;
  }
  [[nodiscard]] std::string join() const {
    std::string out;
    out.reserve(charged_);
    for (const auto& piece : pieces_)
      out += piece;
    return out;
  }

 private:
  std::shared_ptr<metadata_budget> budget_;
  std::uint64_t size_;
  std::vector<std::string> pieces_;
  std::uint64_t charged_ = 0;
  std::uint32_t have_ = 0;
};

// One connection's side of a fetch: the peer's ut_metadata id, the copy, and the window
// of pieces asked for.
struct metadata_request_state {
  std::uint8_t their_id = 0;
  std::unique_ptr<metadata_copy> copy;
  std::uint32_t asked = 0;                       // pieces [0, asked) have been requested
  std::chrono::steady_clock::time_point last{};  // the last piece (or the first request)
};

}  // namespace shoal
