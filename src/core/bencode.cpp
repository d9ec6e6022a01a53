#include "core/bencode.hpp"

#include <limits>

namespace shoal::bencode {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string describe(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

struct frame {
  std::uint32_t tok;  // the open container's token
  bool dict;
  bool want_key;           // dict: the next item is a key
  std::uint32_t last_key;  // dict: token of the previous key (strict mode), or UINT32_MAX
};

error fail(errc code, std::string what, std::size_t at) {
  return error{code, std::move(what), at};
}

}  // namespace

result<document> decode(std::string_view in, mode m, const limits& lim) {
  const bool strict = m == mode::strict;
  if (in.size() > max_input) return fail(errc::limit_exceeded, "bencode: input larger than 4 GiB", 0);
  if (in.empty()) return fail(errc::syntax, "bencode: empty input", 0);

  document doc;
  doc.buf_ = in;
  auto& toks = doc.tokens_;
  toks.reserve(std::min<std::size_t>(in.size() / 4 + 1, 1u << 16));
  std::vector<frame> stack;
  stack.reserve(16);

  const char* p = in.data();
  const std::size_t n = in.size();
  std::size_t pos = 0;

  auto push_token = [&](type t, std::size_t start, std::size_t end, std::uint8_t header) -> bool {
    if (toks.size() >= lim.tokens) return false;
    auto idx = static_cast<std::uint32_t>(toks.size());
    toks.push_back(token{static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(end), idx + 1, t, header});
    return true;
  };

  for (;;) {
    if (pos >= n) {
      return fail(errc::syntax,
                  stack.empty() ? "bencode: unexpected end of input"
                                : std::string("bencode: unexpected end of input inside a ") +
                                      (stack.back().dict ? "dictionary" : "list") + " opened at byte " +
                                      std::to_string(toks[stack.back().tok].start),
                  pos);
    }
    const char c = p[pos];
    frame* top = stack.empty() ? nullptr : &stack.back();
    const bool key_position = top && top->dict && top->want_key;
    if (key_position && !is_digit(c) && c != 'e') {
      return fail(errc::syntax, "bencode: dictionary key must be a string, found " + describe(c), pos);
    }

    bool completed_value = false;  // a whole value ended at pos
    std::uint32_t completed_tok = 0;

    if (c == 'i') {
      std::size_t q = pos + 1;
      bool neg = false;
      if (q < n && p[q] == '-') {
        neg = true;
        ++q;
      }
      const std::size_t digits_at = q;
      // Accumulate negatively so INT64_MIN is representable.
      std::int64_t v = 0;
      while (q < n && is_digit(p[q])) {
        const int d = p[q] - '0';
        if (v < (std::numeric_limits<std::int64_t>::min() + d) / 10) {
          return fail(errc::syntax, "bencode: integer does not fit in 64 bits", pos);
        }
        v = v * 10 - d;
        ++q;
      }
      if (q == digits_at) {
        if (q >= n) return fail(errc::syntax, "bencode: unexpected end of input in an integer", q);
        return fail(errc::syntax, "bencode: integer has no digits, found " + describe(p[q]), q);
      }
      if (q >= n) return fail(errc::syntax, "bencode: unexpected end of input in an integer", q);
      if (p[q] != 'e') return fail(errc::syntax, "bencode: expected 'e' to end an integer, found " + describe(p[q]), q);
      if (!neg && v == std::numeric_limits<std::int64_t>::min()) {
        return fail(errc::syntax, "bencode: integer does not fit in 64 bits", pos);
      }
      if (strict) {
        if (p[digits_at] == '0' && q - digits_at > 1) {
          return fail(errc::non_canonical, "bencode: integer with a leading zero", pos);
        }
        if (neg && v == 0) return fail(errc::non_canonical, "bencode: negative zero", pos);
      }
      if (!push_token(type::integer, pos, q + 1, 0)) {
        return fail(errc::limit_exceeded, "bencode: more than " + std::to_string(lim.tokens) + " values", pos);
      }
      completed_tok = static_cast<std::uint32_t>(toks.size() - 1);
      pos = q + 1;
      completed_value = true;
    } else if (c == 'l' || c == 'd') {
      if (stack.size() >= lim.depth) {
        return fail(errc::limit_exceeded, "bencode: nesting deeper than " + std::to_string(lim.depth), pos);
      }
      if (!push_token(c == 'd' ? type::dict : type::list, pos, pos, 0)) {
        return fail(errc::limit_exceeded, "bencode: more than " + std::to_string(lim.tokens) + " values", pos);
      }
      stack.push_back(frame{static_cast<std::uint32_t>(toks.size() - 1), c == 'd', true, UINT32_MAX});
      ++pos;
    } else if (c == 'e') {
      if (!top) return fail(errc::syntax, "bencode: unexpected 'e' outside a list or dictionary", pos);
      if (top->dict && !top->want_key) {
        return fail(errc::syntax, "bencode: dictionary key without a value", pos);
      }
      token& t = toks[top->tok];
      t.end = static_cast<std::uint32_t>(pos + 1);
      t.next = static_cast<std::uint32_t>(toks.size());
      completed_tok = top->tok;
      stack.pop_back();
      ++pos;
      completed_value = true;
    } else if (is_digit(c)) {
      std::size_t q = pos;
      std::uint64_t len = 0;
      while (q < n && is_digit(p[q])) {
        if (q - pos >= max_length_digits) {
          return fail(errc::limit_exceeded, "bencode: string length has more than 19 digits", pos);
        }
        len = len * 10 + static_cast<std::uint64_t>(p[q] - '0');
        ++q;
      }
      if (q >= n) return fail(errc::syntax, "bencode: unexpected end of input in a string length", q);
      if (p[q] != ':')
        return fail(errc::syntax, "bencode: expected ':' after a string length, found " + describe(p[q]), q);
      if (strict && p[pos] == '0' && q - pos > 1) {
        return fail(errc::non_canonical, "bencode: string length with a leading zero", pos);
      }
      const std::size_t data = q + 1;
      if (len > n - data) {
        return fail(errc::syntax,
                    "bencode: string of " + std::to_string(len) + " bytes runs past the end of input (" +
                        std::to_string(n - data) + " bytes left)",
                    pos);
      }
      if (!push_token(type::string, pos, data + len, static_cast<std::uint8_t>(data - pos))) {
        return fail(errc::limit_exceeded, "bencode: more than " + std::to_string(lim.tokens) + " values", pos);
      }
      completed_tok = static_cast<std::uint32_t>(toks.size() - 1);
      pos = data + static_cast<std::size_t>(len);
      completed_value = true;
    } else {
      return fail(errc::syntax, "bencode: unexpected " + describe(c), pos);
    }

    if (!completed_value) continue;
    if (stack.empty()) break;  // the top-level value is complete
    frame& f = stack.back();
    if (f.dict) {
      if (f.want_key) {
        if (strict && f.last_key != UINT32_MAX) {
          const token& a = toks[f.last_key];
          const token& b = toks[completed_tok];
          std::string_view ka(p + a.start + a.header, a.end - a.start - a.header);
          std::string_view kb(p + b.start + b.header, b.end - b.start - b.header);
          if (kb == ka) return fail(errc::non_canonical, "bencode: duplicate dictionary key", b.start);
          if (kb < ka) return fail(errc::non_canonical, "bencode: dictionary keys not sorted", b.start);
        }
        f.last_key = completed_tok;
        f.want_key = false;
      } else {
        f.want_key = true;
      }
    }
  }

  if (pos != n && strict) {
    return fail(errc::non_canonical, "bencode: trailing data after the top-level value", pos);
  }
  return doc;
}

node document::root() const {
  return {tokens_.data(), buf_.data(), 0};
}

std::int64_t node::as_int() const {
  if (!is_int()) return 0;
  const token& t = toks_[idx_];
  const char* s = buf_ + t.start + 1;
  const char* e = buf_ + t.end - 1;
  bool neg = false;
  if (*s == '-') {
    neg = true;
    ++s;
  }
  std::int64_t v = 0;
  for (; s < e; ++s)
    v = v * 10 - (*s - '0');
  return neg ? v : -v;
}

std::string_view node::as_string() const {
  if (!is_string()) return {};
  const token& t = toks_[idx_];
  return {buf_ + t.start + t.header, static_cast<std::size_t>(t.end - t.start - t.header)};
}

std::string_view node::raw() const {
  if (!present()) return {};
  const token& t = toks_[idx_];
  return {buf_ + t.start, static_cast<std::size_t>(t.end - t.start)};
}

node node::find(std::string_view key) const {
  if (!is_dict()) return {};
  const std::uint32_t stop = toks_[idx_].next;
  for (std::uint32_t k = idx_ + 1; k < stop;) {
    const std::uint32_t v = toks_[k].next;
    node kn{toks_, buf_, k};
    if (kn.as_string() == key) return {toks_, buf_, v};
    k = toks_[v].next;
  }
  return {};
}

std::size_t node::size() const {
  if (!is_list() && !is_dict()) return 0;
  std::size_t count = 0;
  for (auto it = begin(); it != end(); ++it)
    ++count;
  return count;
}

node::iterator node::begin() const {
  if (!is_list() && !is_dict()) return {toks_, buf_, 0, false};
  return {toks_, buf_, idx_ + 1, kind() == type::dict};
}

node::iterator node::end() const {
  if (!is_list() && !is_dict()) return {toks_, buf_, 0, false};
  return {toks_, buf_, toks_[idx_].next, kind() == type::dict};
}

namespace {
void append_int(std::string& out, std::int64_t i) {
  out += 'i';
  out += std::to_string(i);
  out += 'e';
}
void append_str(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s);
}
}  // namespace

void encode_to(std::string& out, const value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v.v)) {
    append_int(out, *i);
  } else if (const auto* s = std::get_if<std::string>(&v.v)) {
    append_str(out, *s);
  } else if (const auto* l = std::get_if<list>(&v.v)) {
    out += 'l';
    for (const auto& e : *l)
      encode_to(out, e);
    out += 'e';
  } else {
    out += 'd';
    for (const auto& [k, e] : std::get<dict>(v.v)) {
      append_str(out, k);
      encode_to(out, e);
    }
    out += 'e';
  }
}

std::string encode(const value& v) {
  std::string out;
  encode_to(out, v);
  return out;
}

value to_value(const node& n) {
  if (!n) return {};
  switch (n.kind()) {
    case type::integer:
      return n.as_int();
    case type::string:
      return std::string(n.as_string());
    case type::list: {
      list l;
      for (node e : n)
        l.push_back(to_value(e));
      return l;
    }
    case type::dict: {
      dict d;
      for (node k : n)
        d.emplace(std::string(k.as_string()), to_value(k.value_of_key()));
      return d;
    }
  }
  return {};
}

}  // namespace shoal::bencode
