// Fuzz target for the bencode decoder, the node API and the encoder.
//
// Checks, for every input:
//  - decode never crashes, in lenient or strict mode; errors carry a message and an
//    offset inside the input;
//  - strict success implies lenient success with the same tokens; where lenient succeeds
//    and strict fails, the reason is non_canonical;
//  - every node's accessors agree with its raw bytes (integers re-parsed independently,
//    string length prefixes, containers tiling their children exactly, size(), find()
//    returning the first value for each key and nothing for a missing key);
//  - the limits are exact: decoding with depth/tokens set to what the document needs
//    succeeds, one less fails with limit_exceeded;
//  - the encoder's output is canonical (decodes in strict mode and re-encodes the same),
//    and for a strict document encode(to_value(root)) gives back the input byte for byte.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "check.hpp"
#include "core/bencode.hpp"

namespace bc = shoal::bencode;

namespace {

// Keys checked with find() per dictionary: find() is linear, so checking every key of a
// huge dictionary would be quadratic and slow the fuzzer down for nothing.
constexpr std::size_t max_find_checks = 256;

struct walk_stats {
  std::size_t nodes = 0;
  std::size_t depth = 0;  // deepest nesting of lists/dicts
};

void walk(const bc::node& n, std::size_t depth, walk_stats& st, std::string_view buf);

// The children of a container must tile its bytes between the opening letter and the 'e'.
void check_tiling(std::size_t& cursor, const bc::node& child) {
  FUZZ_CHECK(child.offset() == cursor);
  cursor += child.raw().size();
}

void walk_list(const bc::node& n, std::size_t depth, walk_stats& st, std::string_view buf) {
  std::string_view raw = n.raw();
  FUZZ_CHECK(raw.front() == 'l');
  std::size_t cursor = n.offset() + 1;
  std::size_t count = 0;
  for (bc::node e : n) {
    check_tiling(cursor, e);
    walk(e, depth, st, buf);
    ++count;
  }
  FUZZ_CHECK(cursor == n.offset() + raw.size() - 1);
  FUZZ_CHECK(n.size() == count);
  FUZZ_CHECK(!n.find("").present());
}

void walk_dict(const bc::node& n, std::size_t depth, walk_stats& st, std::string_view buf) {
  std::string_view raw = n.raw();
  FUZZ_CHECK(raw.front() == 'd');
  std::size_t cursor = n.offset() + 1;
  std::size_t count = 0;
  std::map<std::string_view, std::size_t> first;  // key -> offset of its first value
  for (bc::node k : n) {
    FUZZ_CHECK(k.is_string());
    bc::node v = k.value_of_key();
    FUZZ_CHECK(v.present());
    check_tiling(cursor, k);
    check_tiling(cursor, v);
    walk(k, depth, st, buf);
    walk(v, depth, st, buf);
    first.emplace(k.as_string(), v.offset());
    ++count;
  }
  FUZZ_CHECK(cursor == n.offset() + raw.size() - 1);
  FUZZ_CHECK(n.size() == count);
  std::size_t checked = 0;
  for (const auto& [key, off] : first) {
    if (checked++ == max_find_checks) break;
    bc::node f = n.find(key);
    FUZZ_CHECK(f.present());
    FUZZ_CHECK(f.offset() == off);
  }
  std::string probe = "probe";
  while (first.count(probe) != 0)
    probe += '~';
  FUZZ_CHECK(!n.find(probe).present());
}

void walk(const bc::node& n, std::size_t depth, walk_stats& st, std::string_view buf) {
  FUZZ_CHECK(n.present());
  ++st.nodes;
  std::string_view raw = n.raw();
  FUZZ_CHECK(raw.size() >= 2);
  FUZZ_CHECK(raw.data() >= buf.data() && raw.data() + raw.size() <= buf.data() + buf.size());
  FUZZ_CHECK(n.offset() == static_cast<std::size_t>(raw.data() - buf.data()));
  FUZZ_CHECK(n.is_int() + n.is_string() + n.is_list() + n.is_dict() == 1);

  switch (n.kind()) {
    case bc::type::integer: {
      FUZZ_CHECK(raw.front() == 'i' && raw.back() == 'e');
      std::int64_t expect = 0;
      const char* first = raw.data() + 1;
      const char* last = raw.data() + raw.size() - 1;
      auto [end, ec] = std::from_chars(first, last, expect);
      FUZZ_CHECK(ec == std::errc{});
      FUZZ_CHECK(end == last);
      FUZZ_CHECK(n.as_int() == expect);
      FUZZ_CHECK(n.as_string().empty());
      FUZZ_CHECK(n.size() == 0);
      FUZZ_CHECK(n.begin() == n.end());
      FUZZ_CHECK(!n.find("").present());
      break;
    }
    case bc::type::string: {
      std::string_view s = n.as_string();
      const std::size_t colon = raw.find(':');
      FUZZ_CHECK(colon != std::string_view::npos && colon > 0);
      std::uint64_t len = 0;
      auto [end, ec] = std::from_chars(raw.data(), raw.data() + colon, len);
      FUZZ_CHECK(ec == std::errc{});
      FUZZ_CHECK(end == raw.data() + colon);
      FUZZ_CHECK(len == s.size());
      FUZZ_CHECK(s.data() == raw.data() + colon + 1);
      FUZZ_CHECK(colon + 1 + s.size() == raw.size());
      FUZZ_CHECK(n.as_int() == 0);
      FUZZ_CHECK(n.size() == 0);
      FUZZ_CHECK(n.begin() == n.end());
      FUZZ_CHECK(!n.find(s).present());
      break;
    }
    case bc::type::list:
      FUZZ_CHECK(raw.back() == 'e');
      st.depth = std::max(st.depth, depth + 1);
      walk_list(n, depth + 1, st, buf);
      FUZZ_CHECK(n.as_int() == 0 && n.as_string().empty());
      break;
    case bc::type::dict:
      FUZZ_CHECK(raw.back() == 'e');
      st.depth = std::max(st.depth, depth + 1);
      walk_dict(n, depth + 1, st, buf);
      FUZZ_CHECK(n.as_int() == 0 && n.as_string().empty());
      break;
  }
}

void check_error(const shoal::error& e, std::size_t size) {
  FUZZ_CHECK(e.code != shoal::errc::ok);
  FUZZ_CHECK(!e.detail.empty());
  FUZZ_CHECK(e.offset == shoal::no_offset || e.offset <= size);
  FUZZ_CHECK(!e.message().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  auto lenient = bc::decode(in, bc::mode::lenient);
  auto strict = bc::decode(in, bc::mode::strict);
  if (!lenient) {
    check_error(lenient.err(), size);
    FUZZ_CHECK(!strict);
    check_error(strict.err(), size);
    return 0;
  }
  if (!strict) {
    check_error(strict.err(), size);
    FUZZ_CHECK(strict.err().code == shoal::errc::non_canonical);
  } else {
    FUZZ_CHECK(strict->token_count() == lenient->token_count());
    FUZZ_CHECK(strict->trailing_bytes() == 0);
  }

  const bc::document& doc = *lenient;
  FUZZ_CHECK(doc.buffer().data() == in.data() && doc.buffer().size() == in.size());
  const bc::node root = doc.root();
  FUZZ_CHECK(root.offset() == 0);
  FUZZ_CHECK(root.raw().size() + doc.trailing_bytes() == size);

  walk_stats st;
  walk(root, 0, st, in);
  FUZZ_CHECK(st.nodes == doc.token_count());
  FUZZ_CHECK(st.depth <= bc::max_depth);

  // The bounds are exact.
  {
    auto at = bc::decode(in, bc::mode::lenient, bc::limits{st.depth, st.nodes});
    FUZZ_CHECK(at.ok());
    FUZZ_CHECK(at->token_count() == st.nodes);
    auto under_tokens = bc::decode(in, bc::mode::lenient, bc::limits{st.depth, st.nodes - 1});
    FUZZ_CHECK(!under_tokens && under_tokens.err().code == shoal::errc::limit_exceeded);
    if (st.depth > 0) {
      auto under_depth = bc::decode(in, bc::mode::lenient, bc::limits{st.depth - 1, st.nodes});
      FUZZ_CHECK(!under_depth && under_depth.err().code == shoal::errc::limit_exceeded);
    }
  }

  // The encoder always writes canonical bencode.
  const std::string enc = bc::encode(bc::to_value(root));
  auto again = bc::decode(enc, bc::mode::strict);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(bc::encode(bc::to_value(again->root())) == enc);
  if (strict) {
    // A canonical document survives the round trip byte for byte.
    FUZZ_CHECK(enc == in);
    FUZZ_CHECK(bc::encode(bc::to_value(strict->root())) == in);
  } else {
    // Otherwise the input was not canonical, so the canonical form must differ.
    FUZZ_CHECK(enc != in);
  }
  return 0;
}
