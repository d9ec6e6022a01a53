#include "storage/file_storage.hpp"

#include <algorithm>

namespace shoal {

file_storage::file_storage(const metainfo& m)
    : files_(m.files),
      piece_length_(m.piece_length),
      num_pieces_(static_cast<std::uint32_t>(m.num_pieces)),
      end_(0),
      v2_only_(m.version == torrent_version::v2) {
  for (const auto& f : files_)
    end_ = std::max(end_, f.offset + f.size);
}

std::uint32_t file_storage::piece_size(std::uint32_t piece) const {
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * piece_length_;
  std::uint64_t end = std::min(start + piece_length_, end_);
  if (v2_only_) {
    // The file holding this piece ends it.
    auto it = std::upper_bound(files_.begin(), files_.end(), start,
                               [](std::uint64_t s, const file_entry& f) { return s < f.offset; });
    while (it != files_.begin()) {
      --it;
      if (it->size > 0 && it->offset <= start && start < it->offset + it->size) {
        end = std::min(end, it->offset + it->size);
        break;
      }
    }
  }
  return static_cast<std::uint32_t>(end > start ? end - start : 0);
}

void file_storage::map(std::uint32_t piece, std::uint64_t begin, std::uint64_t length,
                       std::vector<file_slice>& out) const {
  out.clear();
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * piece_length_ + begin;
  const std::uint64_t stop = start + length;
  // First file that ends after `start`.
  auto it = std::lower_bound(files_.begin(), files_.end(), start,
                             [](const file_entry& f, std::uint64_t s) { return f.offset + f.size <= s; });
  for (; it != files_.end() && it->offset < stop; ++it) {
    if (it->size == 0 || it->pad) continue;
    const std::uint64_t a = std::max(start, it->offset);
    const std::uint64_t b = std::min(stop, it->offset + it->size);
    if (a >= b) continue;
    out.push_back(file_slice{static_cast<std::uint32_t>(it - files_.begin()), a - it->offset, b - a,
                             a - static_cast<std::uint64_t>(piece) * piece_length_});
  }
}

std::pair<std::uint32_t, std::uint32_t> file_storage::file_pieces(std::uint32_t f) const {
  const auto& fe = files_[f];
  if (fe.size == 0 || fe.pad) return {0, 0};
  return {static_cast<std::uint32_t>(fe.offset / piece_length_),
          static_cast<std::uint32_t>((fe.offset + fe.size - 1) / piece_length_ + 1)};
}

}  // namespace shoal
