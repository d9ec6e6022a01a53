// A set of piece indices with fast "has all" / "has none" answers (seeds and fresh
// peers need no bit array walk), stored in the wire's bit order (MSB of byte 0 = piece 0).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shoal {

class bitfield {
 public:
  bitfield() = default;
  explicit bitfield(std::uint32_t size, bool value = false);

  [[nodiscard]] std::uint32_t size() const { return size_; }
  [[nodiscard]] std::uint32_t count() const { return count_; }
  [[nodiscard]] bool all() const { return count_ == size_; }
  [[nodiscard]] bool none() const { return count_ == 0; }
  [[nodiscard]] bool get(std::uint32_t i) const {
    return (static_cast<unsigned char>(bytes_[i >> 3]) >> (7 - (i & 7))) & 1;
  }
  void set(std::uint32_t i);
  void clear(std::uint32_t i);
  void set_all();
  void clear_all();

  // The wire form: ceil(size/8) bytes, spare bits zero.
  [[nodiscard]] const std::string& bytes() const { return bytes_; }
  // Loads a wire bitfield; false if the length is wrong or a spare bit is set.
  [[nodiscard]] bool assign(std::string_view wire);

 private:
  std::string bytes_;
  std::uint32_t size_ = 0;
  std::uint32_t count_ = 0;
};

}  // namespace shoal
