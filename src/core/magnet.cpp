#include "core/magnet.hpp"

#include <algorithm>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cctype>
#include <charconv>

#include "core/metainfo.hpp"
#include "core/text.hpp"

namespace shoal {

namespace {

error bad(std::string why) {
  return error{errc::bad_magnet, "magnet link: " + std::move(why), no_offset};
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

bool parse_u32(std::string_view s, std::uint32_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// "host:port" or "[v6]:port", port 1..65535.
bool valid_peer(std::string_view s) {
  std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = s.substr(0, colon);
  if (host.front() == '[' && (host.size() < 3 || host.back() != ']')) return false;
  std::uint32_t port = 0;
  return parse_u32(s.substr(colon + 1), port) && port >= 1 && port <= 65535;
}

// Parameter keys may carry an index suffix ("tr.1", "xt.2").
std::string_view base_key(std::string_view k) {
  auto dot = k.find('.');
  if (dot == std::string_view::npos) return k;
  std::string_view tail = k.substr(dot + 1);
  if (!tail.empty() && tail.find_first_not_of("0123456789") == std::string_view::npos) return k.substr(0, dot);
  return k;
}

}  // namespace

result<magnet_link> parse_magnet(std::string_view uri) {
  if (uri.size() > max_magnet_length) {
    return error{errc::limit_exceeded,
                 "magnet link: " + std::to_string(uri.size()) + " characters, over the limit of " +
                     std::to_string(max_magnet_length),
                 no_offset};
  }
  if (!starts_with_ci(uri, "magnet:")) return bad("does not start with 'magnet:'");
  auto parsed = boost::urls::parse_uri(boost::urls::string_view(uri.data(), uri.size()));
  if (!parsed) return bad("not a valid URI (" + parsed.error().message() + ")");
  const auto& u = *parsed;
  // An empty query has no parameters; Boost.URL 1.81 also reads past it when iterating
  // params() if a fragment follows ("magnet:?#", boostorg/url#864).
  if (!u.has_query() || u.encoded_query().empty()) return bad("has no parameters (expected '?xt=urn:btih:...')");
  if (u.params().size() > max_magnet_params) {
    return error{errc::limit_exceeded, "magnet link: more than " + std::to_string(max_magnet_params) + " parameters",
                 no_offset};
  }
  magnet_link m;
  for (auto p : u.params()) {
    std::string_view key(p.key.data(), p.key.size());
    std::string_view val(p.value.data(), p.value.size());
    std::string_view k = base_key(key);
    if (k == "xt") {
      if (starts_with_ci(val, "urn:btih:")) {
        std::string_view h = val.substr(9);
        std::optional<std::string> raw;
        if (h.size() == 40)
          raw = from_hex(h);
        else if (h.size() == 32)
          raw = from_base32(h);
        else
          return bad("urn:btih needs 40 hex or 32 base32 digits, got " + std::to_string(h.size()) + " characters");
        if (!raw) return bad("urn:btih '" + std::string(h) + "' is not valid " + (h.size() == 40 ? "hex" : "base32"));
        sha1_digest d;
        std::copy(raw->begin(), raw->end(), reinterpret_cast<char*>(d.data()));
        if (m.info_hash_v1 && *m.info_hash_v1 != d) return bad("two different urn:btih info-hashes");
        m.info_hash_v1 = d;
      } else if (starts_with_ci(val, "urn:btmh:")) {
        std::string_view h = val.substr(9);
        // A multihash: 0x12 (SHA-256), 0x20 (32 bytes), then the digest.
        if (!starts_with_ci(h, "1220")) return bad("urn:btmh must be a SHA-256 multihash starting with 1220");
        h = h.substr(4);
        if (h.size() != 64) return bad("urn:btmh needs 64 hex digits after 1220, got " + std::to_string(h.size()));
        auto raw = from_hex(h);
        if (!raw) return bad("urn:btmh '" + std::string(h) + "' is not valid hex");
        sha256_digest d;
        std::copy(raw->begin(), raw->end(), reinterpret_cast<char*>(d.data()));
        if (m.info_hash_v2 && *m.info_hash_v2 != d) return bad("two different urn:btmh info-hashes");
        m.info_hash_v2 = d;
      }
      // Other URNs (ed2k, sha1, ...) are not ours to use; ignore them.
    } else if (k == "dn") {
      m.name = std::string(val);
    } else if (k == "tr") {
      if (!val.empty() && std::find(m.trackers.begin(), m.trackers.end(), val) == m.trackers.end()) {
        m.trackers.emplace_back(val);
      }
    } else if (k == "ws") {
      if (!val.empty()) m.web_seeds.emplace_back(val);
    } else if (k == "xs") {
      if (!val.empty() && std::find(m.exact_sources.begin(), m.exact_sources.end(), val) == m.exact_sources.end())
        m.exact_sources.emplace_back(val);
    } else if (k == "x.pe" || key == "x.pe") {
      if (!valid_peer(val)) return bad("x.pe '" + std::string(val) + "' is not host:port");
      m.peers.emplace_back(val);
    } else if (k == "so") {
      std::string_view rest = val;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        std::uint32_t a = 0, b = 0;
        auto dash = item.find('-');
        bool ok = dash == std::string_view::npos
                      ? (parse_u32(item, a) && (b = a, true))
                      : (parse_u32(item.substr(0, dash), a) && parse_u32(item.substr(dash + 1), b));
        if (!ok || a > b || b > max_select_index)
          return bad("so '" + std::string(val) + "' is not a list of file indices");
        m.select_only.emplace_back(a, b);
      }
    }
  }
  if (!m.info_hash_v1 && !m.info_hash_v2) return bad("no info-hash (expected xt=urn:btih:... or xt=urn:btmh:1220...)");
  return m;
}

std::string to_uri(const magnet_link& m) {
  auto enc = [](std::string_view s) {
    return boost::urls::encode(boost::urls::string_view(s.data(), s.size()), boost::urls::unreserved_chars);
  };
  std::string out = "magnet:?";
  auto sep = [&] {
    if (out.back() != '?') out += '&';
  };
  if (m.info_hash_v1) {
    sep();
    out += "xt=urn:btih:" + to_hex(as_view(*m.info_hash_v1));
  }
  if (m.info_hash_v2) {
    sep();
    out += "xt=urn:btmh:1220" + to_hex(as_view(*m.info_hash_v2));
  }
  if (!m.name.empty()) {
    sep();
    out += "dn=" + enc(m.name);
  }
  for (const auto& t : m.trackers) {
    sep();
    out += "tr=" + enc(t);
  }
  for (const auto& w : m.web_seeds) {
    sep();
    out += "ws=" + enc(w);
  }
  for (const auto& x : m.exact_sources) {
    sep();
    out += "xs=" + enc(x);
  }
  for (const auto& p : m.peers) {
    sep();
    out += "x.pe=" + enc(p);
  }
  if (!m.select_only.empty()) {
    sep();
    out += "so=";
    for (std::size_t i = 0; i < m.select_only.size(); ++i) {
      if (i) out += ',';
      auto [a, b] = m.select_only[i];
      out += std::to_string(a);
      if (b != a) {
        // Appended in two steps: GCC 12 at -O3 flags `"-" + std::string` with a false -Wrestrict.
        out += '-';
        out += std::to_string(b);
      }
    }
  }
  return out;
}

magnet_link magnet_from(const metainfo& mi) {
  magnet_link m;
  m.info_hash_v1 = mi.info_hash_v1;
  m.info_hash_v2 = mi.info_hash_v2;
  m.name = mi.name;
  for (const auto& tier : mi.tracker_tiers) {
    for (const auto& t : tier)
      m.trackers.push_back(t);
  }
  m.web_seeds = mi.web_seeds;
  return m;
}

}  // namespace shoal
