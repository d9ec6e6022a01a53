#include "core/bitfield.hpp"

#include <bit>

namespace shoal {

bitfield::bitfield(std::uint32_t size, bool value) : bytes_((size + 7) / 8, '\0'), size_(size) {
  if (value) set_all();
}

void bitfield::set(std::uint32_t i) {
  if (get(i)) return;
  bytes_[i >> 3] = static_cast<char>(static_cast<unsigned char>(bytes_[i >> 3]) | (0x80u >> (i & 7)));
  ++count_;
}

void bitfield::clear(std::uint32_t i) {
  if (!get(i)) return;
  bytes_[i >> 3] = static_cast<char>(static_cast<unsigned char>(bytes_[i >> 3]) & ~(0x80u >> (i & 7)));
  --count_;
}

void bitfield::set_all() {
  for (auto& b : bytes_)
    b = static_cast<char>(0xff);
  if (size_ % 8 != 0) bytes_.back() = static_cast<char>(0xff << (8 - size_ % 8));
  count_ = size_;
}

void bitfield::clear_all() {
  for (auto& b : bytes_)
    b = 0;
  count_ = 0;
}

bool bitfield::assign(std::string_view wire) {
  if (wire.size() != bytes_.size()) return false;
  if (size_ % 8 != 0) {
    const unsigned spare = 0xffu >> (size_ % 8);
    if ((static_cast<unsigned char>(wire.back()) & spare) != 0) return false;
  }
  bytes_.assign(wire);
  count_ = 0;
  for (unsigned char b : bytes_)
    count_ += static_cast<std::uint32_t>(std::popcount(static_cast<unsigned>(b)));
  return true;
}

}  // namespace shoal
