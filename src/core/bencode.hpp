// Bencode (BEP 3): a non-recursive decoder into a flat token array with zero-copy views
// into the caller's buffer, and an encoder from a small value tree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.hpp"

namespace shoal::bencode {

// Bounds on hostile input. Every one is tested at the bound and one past it.
inline constexpr std::size_t max_depth = 100;           // nested lists/dicts
inline constexpr std::size_t max_tokens = 4'000'000;    // values in one document
inline constexpr std::size_t max_input = 0xFFFF'FFFEu;  // offsets are 32-bit
inline constexpr std::size_t max_length_digits = 19;    // digits in a string length prefix

enum class type : std::uint8_t { integer, string, list, dict };

// lenient: what real-world torrents need (unsorted or duplicate keys, leading zeros,
// -0 and bytes after the top-level value are accepted). strict: canonical BEP 3 only.
enum class mode : std::uint8_t { lenient, strict };

struct limits {
  std::size_t depth = max_depth;
  std::size_t tokens = max_tokens;
};

struct token {
  std::uint32_t start;  // offset of the first byte of the item
  std::uint32_t end;    // offset one past its last byte
  std::uint32_t next;   // index of the token after this item's subtree
  type kind;
  std::uint8_t header;  // strings: bytes of the "len:" prefix
};

class node;

// A decoded document. It views the input buffer, which must outlive it and its nodes.
class document {
 public:
  [[nodiscard]] node root() const;
  [[nodiscard]] std::string_view buffer() const { return buf_; }
  [[nodiscard]] std::size_t token_count() const { return tokens_.size(); }
  // Bytes after the top-level value (accepted only in lenient mode).
  [[nodiscard]] std::size_t trailing_bytes() const { return buf_.size() - tokens_[0].end; }

 private:
  friend result<document> decode(std::string_view, mode, const limits&);
  std::string_view buf_;
  std::vector<token> tokens_;
};

// A cheap handle to one value of a document. Default-constructed, it is "absent":
// every accessor of an absent or wrong-typed node returns an empty value, never throws.
class node {
 public:
  node() = default;

  [[nodiscard]] bool present() const { return toks_ != nullptr; }
  explicit operator bool() const { return present(); }
  [[nodiscard]] type kind() const { return toks_[idx_].kind; }
  [[nodiscard]] bool is_int() const { return present() && kind() == type::integer; }
  [[nodiscard]] bool is_string() const { return present() && kind() == type::string; }
  [[nodiscard]] bool is_list() const { return present() && kind() == type::list; }
  [[nodiscard]] bool is_dict() const { return present() && kind() == type::dict; }

  // The integer's value; 0 if not an integer. Decode already rejected overflow.
  [[nodiscard]] std::int64_t as_int() const;
  // The string's bytes; empty if not a string.
  [[nodiscard]] std::string_view as_string() const;
  // The exact bytes of this value in the input (used for info-hashes).
  [[nodiscard]] std::string_view raw() const;
  // Byte offset of this value in the input.
  [[nodiscard]] std::size_t offset() const { return present() ? toks_[idx_].start : no_offset; }

  // Dictionary look-up by key (first match); absent if missing or not a dict.
  [[nodiscard]] node find(std::string_view key) const;
  // Number of elements of a list, or of key/value pairs of a dict.
  [[nodiscard]] std::size_t size() const;

  // Iteration over a list's elements, or a dict's keys (use value_of for each key).
  class iterator {
   public:
    iterator(const token* t, const char* b, std::uint32_t i, bool dict) : t_(t), b_(b), i_(i), dict_(dict) {}
    node operator*() const { return {t_, b_, i_}; }
    iterator& operator++() {
      i_ = t_[i_].next;
      if (dict_) i_ = t_[i_].next;
      return *this;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }

   private:
    const token* t_;
    const char* b_;
    std::uint32_t i_;
    bool dict_;
  };
  [[nodiscard]] iterator begin() const;
  [[nodiscard]] iterator end() const;
  // For a dict key node returned by iteration: the value that follows it.
  [[nodiscard]] node value_of_key() const { return {toks_, buf_, toks_[idx_].next}; }

 private:
  friend class document;
  node(const token* t, const char* b, std::uint32_t i) : toks_(t), buf_(b), idx_(i) {}
  const token* toks_ = nullptr;
  const char* buf_ = nullptr;
  std::uint32_t idx_ = 0;
};

// Decodes one bencoded value. Errors carry the byte offset and the reason.
result<document> decode(std::string_view input, mode m = mode::lenient, const limits& lim = {});

// A value tree for building documents to encode. Dict keys are kept sorted bytewise,
// so encoding is canonical.
struct value;
using list = std::vector<value>;
using dict = std::map<std::string, value, std::less<>>;
struct value {
  std::variant<std::int64_t, std::string, list, dict> v;
  value() : v(std::int64_t{0}) {}
  value(std::int64_t i) : v(i) {}                   // NOLINT
  value(int i) : v(std::int64_t{i}) {}              // NOLINT
  value(std::string s) : v(std::move(s)) {}         // NOLINT
  value(std::string_view s) : v(std::string(s)) {}  // NOLINT
  value(const char* s) : v(std::string(s)) {}       // NOLINT
  value(list l) : v(std::move(l)) {}                // NOLINT
  value(dict d) : v(std::move(d)) {}                // NOLINT
};

void encode_to(std::string& out, const value& v);
[[nodiscard]] std::string encode(const value& v);
// Converts a decoded node into a value tree (depth is bounded by the decoder).
[[nodiscard]] value to_value(const node& n);

}  // namespace shoal::bencode
