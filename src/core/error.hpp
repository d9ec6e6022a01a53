// Error values shared by every layer: a category code for programs and a precise
// message for people, with the byte offset when the error comes from parsing input.
#pragma once

#include <cstddef>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace shoal {

enum class errc {
  ok = 0,
  syntax,          // input is not well-formed (bencode, magnet URI)
  limit_exceeded,  // a named bound (depth, size, count) was passed
  non_canonical,   // well-formed but not canonical (strict mode only)
  bad_metainfo,    // structure of a .torrent is wrong
  bad_magnet,      // a magnet link is malformed
  io,              // a file could not be read or written
  invalid_argument,
};

const std::error_category& shoal_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), shoal_category()};
}

inline constexpr std::size_t no_offset = static_cast<std::size_t>(-1);

struct error {
  errc code = errc::ok;
  std::string detail;              // what is wrong and where, e.g. "info.piece length: expected an integer"
  std::size_t offset = no_offset;  // byte offset into the input, when known

  // One line for a person: the detail, then the byte offset if there is one.
  [[nodiscard]] std::string message() const;
};

// A value or an error. A small stand-in for std::expected (C++23).
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  result(error err) : v_(std::move(err)) {}  // NOLINT: implicit on purpose
  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  [[nodiscard]] const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

}  // namespace shoal

template <>
struct std::is_error_code_enum<shoal::errc> : std::true_type {};
