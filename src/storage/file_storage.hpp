// Maps pieces to byte ranges of files. Pad files (BEP 47) and the gaps that align v2
// files to pieces read as zeros and are never written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/metainfo.hpp"

namespace shoal {

struct file_slice {
  std::uint32_t file;         // index into files()
  std::uint64_t file_offset;  // where in the file
  std::uint64_t length;
  std::uint64_t piece_offset;  // where in the piece this slice starts
};

class file_storage {
 public:
  explicit file_storage(const metainfo& m);

  [[nodiscard]] std::uint32_t num_pieces() const { return num_pieces_; }
  [[nodiscard]] std::uint64_t piece_length() const { return piece_length_; }
  // Bytes of piece i that peers transfer (v1/hybrid: the last piece is short; v2: each
  // file's last piece is short).
  [[nodiscard]] std::uint32_t piece_size(std::uint32_t piece) const;
  // Slices of real (non-pad) files that cover [begin, begin+length) of a piece, in order.
  void map(std::uint32_t piece, std::uint64_t begin, std::uint64_t length, std::vector<file_slice>& out) const;
  [[nodiscard]] const std::vector<file_entry>& files() const { return files_; }
  // Pieces that hold bytes of file f (empty range for empty and pad files).
  [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> file_pieces(std::uint32_t f) const;
  [[nodiscard]] bool v2_layout() const { return v2_only_; }

 private:
  std::vector<file_entry> files_;
  std::uint64_t piece_length_;
  std::uint32_t num_pieces_;
  std::uint64_t end_;  // end of piece space
  bool v2_only_;
};

}  // namespace shoal
