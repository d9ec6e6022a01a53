#include "daemon/feed.hpp"

#include <cstdint>

namespace shoal::daemon {

namespace {

// The text between <tag ...> and </tag> inside `s`, or nullopt.
std::optional<std::string_view> element(std::string_view s, std::string_view tag, std::string_view* attrs = nullptr) {
  std::size_t pos = 0;
  while (true) {
    pos = s.find("<" + std::string(tag), pos);
    if (pos == std::string_view::npos) return std::nullopt;
    const auto after = pos + 1 + tag.size();
    if (after < s.size() && (s[after] == '>' || s[after] == ' ' || s[after] == '/' || s[after] == '\t' ||
                             s[after] == '\n' || s[after] == '\r'))
      break;
    pos = after;
  }
  const auto open_end = s.find('>', pos);
  if (open_end == std::string_view::npos) return std::nullopt;
  if (attrs) *attrs = s.substr(pos, open_end - pos);
  if (s[open_end - 1] == '/') return std::string_view{};  // <tag ... />
  const auto close = s.find("</" + std::string(tag), open_end);
  if (close == std::string_view::npos) return std::nullopt;
  return s.substr(open_end + 1, close - open_end - 1);
}

std::optional<std::string_view> attribute(std::string_view attrs, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = attrs.find(name, pos)) != std::string_view::npos) {
    const bool word_start = pos > 0 && (attrs[pos - 1] == ' ' || attrs[pos - 1] == '\t' || attrs[pos - 1] == '\n');
    auto p = pos + name.size();
    while (p < attrs.size() && attrs[p] == ' ')
      ++p;
    if (word_start && p < attrs.size() && attrs[p] == '=') {
      ++p;
      while (p < attrs.size() && attrs[p] == ' ')
        ++p;
      if (p < attrs.size() && (attrs[p] == '"' || attrs[p] == '\'')) {
        const char q = attrs[p];
        const auto end = attrs.find(q, p + 1);
        if (end == std::string_view::npos) return std::nullopt;
        return attrs.substr(p + 1, end - p - 1);
      }
    }
    pos = p;
  }
  return std::nullopt;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string text(std::string_view s, std::size_t limit) {
  std::string out;
  // CDATA: the inside, as it is.
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  if (s.substr(0, 9) == "<![CDATA[") {
    auto end = s.find("]]>");
    out = std::string(s.substr(9, end == std::string_view::npos ? std::string_view::npos : end - 9));
    if (out.size() > limit) out.resize(limit);
    return out;
  }
  for (std::size_t i = 0; i < s.size() && out.size() < limit; ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += '&';
      continue;
    }
    const auto ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      std::uint32_t cp = 0;
      const bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
      bool ok = ent.size() > (hex ? 2u : 1u);
      for (std::size_t k = hex ? 2 : 1; k < ent.size() && ok; ++k) {
        const char c = ent[k];
        int d = c >= '0' && c <= '9'          ? c - '0'
                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : -1;
        if (d < 0 || cp > 0x10FFFF)
          ok = false;
        else
          cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
      }
      if (ok) append_utf8(out, cp);
    } else {
      out += '&';
      continue;
    }
    i = semi;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\r' || out.back() == '\t'))
    out.pop_back();
  return out;
}

}  // namespace

std::vector<feed_item> parse_feed(std::string_view xml) {
  std::vector<feed_item> items;
  const bool atom = xml.find("<entry") != std::string_view::npos && xml.find("<item") == std::string_view::npos;
  const std::string open = atom ? "<entry" : "<item", close = atom ? "</entry>" : "</item>";
  std::size_t pos = 0;
  while (items.size() < 10000) {
    pos = xml.find(open, pos);
    if (pos == std::string_view::npos) break;
    const auto end = xml.find(close, pos);
    if (end == std::string_view::npos) break;
    const auto body = xml.substr(pos, end - pos);
    pos = end + close.size();
    feed_item it;
    if (auto t = element(body, "title")) it.title = text(*t, 1024);
    std::string_view attrs;
    if (element(body, "enclosure", &attrs) && !attrs.empty()) {
      if (auto u = attribute(attrs, "url")) it.link = text(*u, 8192);
    }
    if (it.link.empty()) {
      if (atom) {
        // Atom: the first <link href=...> (rel="enclosure" preferred).
        std::size_t lp = 0;
        while ((lp = body.find("<link", lp)) != std::string_view::npos) {
          auto le = body.find('>', lp);
          if (le == std::string_view::npos) break;
          auto a = body.substr(lp, le - lp);
          lp = le;
          auto href = attribute(a, "href");
          if (!href) continue;
          const bool enclosure = attribute(a, "rel").value_or("") == "enclosure";
          if (it.link.empty() || enclosure) it.link = text(*href, 8192);
          if (enclosure) break;
        }
      } else if (auto l = element(body, "link")) {
        it.link = text(*l, 8192);
      }
    }
    if (auto g = element(body, atom ? "id" : "guid")) it.id = text(*g, 1024);
    if (it.id.empty()) it.id = it.link;
    if (!it.link.empty()) items.push_back(std::move(it));
  }
  return items;
}

result<feed_filter> feed_filter::make(const std::string& include, const std::string& exclude) {
  feed_filter f;
  try {
    const auto flags = std::regex::ECMAScript | std::regex::icase | std::regex::nosubs;
    if (!include.empty()) f.include_.emplace(include, flags);
    if (!exclude.empty()) f.exclude_.emplace(exclude, flags);
  } catch (const std::regex_error& e) {
    return error{errc::invalid_argument, std::string("a feed filter is not a valid pattern: ") + e.what()};
  }
  return f;
}

bool feed_filter::matches(const std::string& title) const {
  try {
    if (include_ && !std::regex_search(title, *include_)) return false;
    if (exclude_ && std::regex_search(title, *exclude_)) return false;
  } catch (const std::regex_error&) {
    return false;  // too complex for this title: not taken
  }
  return true;
}

}  // namespace shoal::daemon
