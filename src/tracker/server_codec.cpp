#include "tracker/server_codec.hpp"

#include <sodium/crypto_shorthash.h>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <boost/url/decode_view.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>
#include <charconv>
#include <cstring>

#include "core/bencode.hpp"
#include "core/text.hpp"

namespace shoal::tracker {

using detail::get;
using detail::put;

namespace {

namespace ip = boost::asio::ip;

error bad(std::string why) {
  return error{errc::invalid_argument, std::move(why), no_offset};
}

// Copies a percent-decoded value into `out` if it decodes to exactly N bytes.
template <std::size_t N>
bool decode_exact(const boost::urls::decode_view& v, std::array<std::uint8_t, N>& out) {
  if (v.size() != N) return false;
  std::size_t i = 0;
  for (char c : v)
    out[i++] = static_cast<std::uint8_t>(c);
  return true;
}

// A decimal number (percent-decoding allowed, though no client needs it); at most 20 digits.
template <class Int>
bool decode_number(const boost::urls::decode_view& v, Int& out) {
  std::array<char, 21> buf{};
  if (v.empty() || v.size() >= buf.size()) return false;
  std::size_t n = 0;
  for (char c : v)
    buf[n++] = c;
  const char* end = buf.data() + n;
  auto [p, ec] = std::from_chars(buf.data(), end, out);
  return ec == std::errc() && p == end;
}

// A parameter's key as plain text. Keys are ASCII names that no client escapes, so the
// encoded text usually is the key (comparing decoded views key by key cost more than the
// rest of the parse); an escaped key is decoded into `scratch`.
std::string_view key_text(const boost::urls::param_pct_view& p, std::string& scratch) {
  if (p.key.decoded_size() == p.key.size()) return {p.key.data(), p.key.size()};
  scratch = p.key.decode();
  return scratch;
}

// Boost.URL 1.81's parse_query builds its view from s.data() alone, which measures the
// input with strlen: it must be given a NUL-terminated copy that ends where the query
// ends (a view into a request buffer reads on into the HTTP headers; found by the interop
// test).
auto parse_params(const std::string& copy) {
  return boost::urls::parse_query(boost::urls::string_view(copy.data(), copy.size()));
}
}  // namespace

target_parts split_target(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {target, target.substr(target.size())};
  return {target.substr(0, q), target.substr(q + 1)};
}

result<announce_query> parse_announce_query(std::string_view query) {
  const std::string copy(query);
  auto params = parse_params(copy);
  if (!params) return bad("announce: the query string is not valid (binary values must be percent-encoded)");
  announce_query q;
  bool have_hash = false, have_id = false, have_port = false, have_left = false;
  std::string scratch;
  for (auto p : *params) {
    if (!p.has_value) continue;
    const auto v = *p.value;
    const std::string_view key = key_text(p, scratch);
    if (key == "info_hash") {
      if (have_hash) return bad("announce: info_hash given twice");
      if (!decode_exact(v, q.req.info_hash)) return bad("announce: info_hash must be 20 bytes");
      have_hash = true;
    } else if (key == "peer_id") {
      if (!decode_exact(v, q.req.peer_id)) return bad("announce: peer_id must be 20 bytes");
      have_id = true;
    } else if (key == "port") {
      std::uint32_t port = 0;
      if (!decode_number(v, port) || port == 0 || port > 65535) return bad("announce: port must be 1 to 65535");
      q.req.port = static_cast<std::uint16_t>(port);
      have_port = true;
    } else if (key == "uploaded") {
      if (!decode_number(v, q.req.uploaded)) return bad("announce: uploaded is not a number");
    } else if (key == "downloaded") {
      if (!decode_number(v, q.req.downloaded)) return bad("announce: downloaded is not a number");
    } else if (key == "left") {
      if (!decode_number(v, q.req.left)) return bad("announce: left is not a number");
      have_left = true;
    } else if (key == "numwant") {
      std::int64_t n = 0;
      if (!decode_number(v, n)) return bad("announce: numwant is not a number");
      if (n >= 0) {  // negative: the default, as in BEP 15
        q.req.numwant = static_cast<std::uint32_t>(std::min<std::int64_t>(n, UINT32_MAX));
        q.numwant_given = true;
      }
    } else if (key == "event") {
      if (v == "started") {
        q.req.ev = event::started;
      } else if (v == "completed") {
        q.req.ev = event::completed;
      } else if (v == "stopped") {
        q.req.ev = event::stopped;
      } else if (v.empty() || v == "empty" || v == "paused") {  // "paused": BEP 21, a regular announce
        q.req.ev = event::none;
      } else {
        return bad("announce: unknown event");
      }
    } else if (key == "compact") {
      q.compact = !(v == "0");
    } else if (key == "no_peer_id") {
      q.no_peer_id = !(v == "0");
    }
  }
  if (!have_hash) return bad("announce: info_hash is missing");
  if (!have_id) return bad("announce: peer_id is missing");
  if (!have_port) return bad("announce: port is missing");
  if (!have_left) return bad("announce: left is missing");
  return q;
}

result<std::vector<sha1_digest>> parse_scrape_query(std::string_view query) {
  const std::string copy(query);
  auto params = parse_params(copy);
  if (!params) return bad("scrape: the query string is not valid (binary values must be percent-encoded)");
  std::vector<sha1_digest> out;
  std::string scratch;
  for (auto p : *params) {
    if (!p.has_value || key_text(p, scratch) != "info_hash") continue;
    if (out.size() == max_scrape_hashes) {
      return bad("scrape: more than " + std::to_string(max_scrape_hashes) + " info-hashes");
    }
    sha1_digest h;
    if (!decode_exact(*p.value, h)) return bad("scrape: info_hash must be 20 bytes");
    out.push_back(h);
  }
  if (out.empty()) return bad("scrape: no info_hash (full scrapes are not supported)");
  return out;
}

result<std::vector<sha1_digest>> parse_whitelist(std::string_view text) {
  std::vector<sha1_digest> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto raw = line.size() == 40 ? from_hex(line) : std::nullopt;
    if (!raw) {
      return error{errc::syntax, "whitelist line " + std::to_string(line_no) + ": expected a 40-digit hex info-hash",
                   no_offset};
    }
    sha1_digest h;
    std::memcpy(h.data(), raw->data(), h.size());
    out.push_back(h);
  }
  return out;
}

namespace {
// Bencode written straight into the reply, for the one reply every announce gets: the
// value-tree encoder builds a std::map per reply. Keys must come in sorted order; the unit
// tests compare the result with bencode::encode of the same dictionary.
void bkey(std::string& out, std::string_view key) {
  char num[24];
  auto [end, ec] = std::to_chars(num, num + sizeof num, key.size());
  out.append(num, end);
  out += ':';
  out.append(key);
}
void bint(std::string& out, std::string_view key, std::uint64_t v) {
  bkey(out, key);
  char num[24];
  auto [end, ec] = std::to_chars(num, num + sizeof num, v);
  out += 'i';
  out.append(num, end);
  out += 'e';
}
void bstr(std::string& out, std::string_view key, std::string_view v) {
  bkey(out, key);
  bkey(out, v);
}
}  // namespace

std::string encode_http_announce(const announce_reply& r, bool compact) {
  if (compact) {
    std::string out;
    out.reserve(128 + r.peers4.size() + r.peers6.size() + r.warning.size());
    out += 'd';
    bint(out, "complete", r.complete);
    bint(out, "downloaded", r.downloaded);
    bint(out, "incomplete", r.incomplete);
    bint(out, "interval", r.interval);
    bint(out, "min interval", r.min_interval);
    bstr(out, "peers", r.peers4);
    if (!r.peers6.empty()) bstr(out, "peers6", r.peers6);
    if (!r.warning.empty()) bstr(out, "warning message", r.warning);
    out += 'e';
    return out;
  }
  bencode::dict d;
  d["interval"] = static_cast<std::int64_t>(r.interval);
  d["min interval"] = static_cast<std::int64_t>(r.min_interval);
  d["complete"] = static_cast<std::int64_t>(r.complete);
  d["incomplete"] = static_cast<std::int64_t>(r.incomplete);
  d["downloaded"] = static_cast<std::int64_t>(r.downloaded);
  if (!r.warning.empty()) d["warning message"] = r.warning;
  {
    bencode::list peers;
    auto add = [&](std::string ip_text, std::uint64_t port) {
      bencode::dict p;
      p["ip"] = std::move(ip_text);
      p["port"] = static_cast<std::int64_t>(port);
      peers.emplace_back(std::move(p));
    };
    for (std::size_t i = 0; i + 6 <= r.peers4.size(); i += 6) {
      add(ip::address_v4(static_cast<std::uint32_t>(get(r.peers4, i, 4))).to_string(), get(r.peers4, i + 4, 2));
    }
    for (std::size_t i = 0; i + 18 <= r.peers6.size(); i += 18) {
      ip::address_v6::bytes_type b;
      std::memcpy(b.data(), r.peers6.data() + i, 16);
      add(ip::address_v6(b).to_string(), get(r.peers6, i + 16, 2));
    }
    d["peers"] = std::move(peers);
  }
  return bencode::encode(d);
}

std::string encode_http_failure(std::string_view reason) {
  return bencode::encode(bencode::dict{{"failure reason", reason}});
}

std::string encode_http_scrape(const std::vector<std::pair<sha1_digest, scrape_entry>>& files) {
  bencode::dict f;
  for (const auto& [h, e] : files) {
    bencode::dict entry;
    entry["complete"] = static_cast<std::int64_t>(e.complete);
    entry["incomplete"] = static_cast<std::int64_t>(e.incomplete);
    entry["downloaded"] = static_cast<std::int64_t>(e.downloaded);
    f[std::string(as_view(h))] = std::move(entry);
  }
  return bencode::encode(bencode::dict{{"files", std::move(f)}});
}

std::uint32_t udp_transaction_of(std::string_view pkt) {
  return static_cast<std::uint32_t>(get(pkt, 12, 4));
}

result<udp_request> parse_udp_request(std::string_view pkt) {
  if (pkt.size() < udp_header_size) return bad("packet shorter than 16 bytes");
  udp_request r;
  r.connection_id = get(pkt, 0, 8);
  const auto action = get(pkt, 8, 4);
  r.transaction = static_cast<std::uint32_t>(get(pkt, 12, 4));
  switch (action) {
    case 0:
      if (r.connection_id != udp_protocol_id) return bad("connect without the BEP 15 protocol id");
      r.action = udp_action::connect;
      return r;
    case 1: {
      if (pkt.size() < udp_announce_size) return bad("announce shorter than 98 bytes");
      r.action = udp_action::announce;
      auto& q = r.announce;
      std::memcpy(q.req.info_hash.data(), pkt.data() + 16, 20);
      std::memcpy(q.req.peer_id.data(), pkt.data() + 36, 20);
      q.req.downloaded = get(pkt, 56, 8);
      q.req.left = get(pkt, 64, 8);
      q.req.uploaded = get(pkt, 72, 8);
      switch (get(pkt, 80, 4)) {
        case 0:
          q.req.ev = event::none;
          break;
        case 1:
          q.req.ev = event::completed;
          break;
        case 2:
          q.req.ev = event::started;
          break;
        case 3:
          q.req.ev = event::stopped;
          break;
        default:
          return bad("unknown event");
      }
      // Bytes 84..87 are the client's address: ignored, the packet's source counts.
      q.req.key = static_cast<std::uint32_t>(get(pkt, 88, 4));
      const auto numwant = static_cast<std::int32_t>(static_cast<std::uint32_t>(get(pkt, 92, 4)));
      if (numwant >= 0) {
        q.req.numwant = static_cast<std::uint32_t>(numwant);
        q.numwant_given = true;
      }
      q.req.port = static_cast<std::uint16_t>(get(pkt, 96, 2));
      if (q.req.port == 0) return bad("port must be 1 to 65535");
      // Anything after byte 98 is BEP 41 options, which this tracker does not use.
      return r;
    }
    case 2: {
      const auto hashes = pkt.substr(udp_header_size);
      if (hashes.empty() || hashes.size() % 20 != 0) return bad("scrape must carry whole 20-byte info-hashes");
      if (hashes.size() / 20 > max_udp_scrape_hashes) return bad("scrape of more than 74 info-hashes");
      r.action = udp_action::scrape;
      r.scrape_hashes = hashes;
      return r;
    }
    default:
      return bad("unknown action");
  }
}

void encode_udp_connect(std::string& out, std::uint32_t transaction, std::uint64_t connection_id) {
  out.clear();
  put(out, static_cast<std::uint32_t>(udp_action::connect), 4);
  put(out, transaction, 4);
  put(out, connection_id, 8);
}

void encode_udp_announce(std::string& out, std::uint32_t transaction, std::uint32_t interval, std::uint32_t leechers,
                         std::uint32_t seeders, std::string_view peers) {
  out.clear();
  put(out, static_cast<std::uint32_t>(udp_action::announce), 4);
  put(out, transaction, 4);
  put(out, interval, 4);
  put(out, leechers, 4);
  put(out, seeders, 4);
  out.append(peers);
}

void encode_udp_scrape(std::string& out, std::uint32_t transaction, const std::vector<scrape_entry>& entries) {
  out.clear();
  put(out, static_cast<std::uint32_t>(udp_action::scrape), 4);
  put(out, transaction, 4);
  for (const auto& e : entries) {
    put(out, e.complete, 4);
    put(out, e.downloaded, 4);
    put(out, e.incomplete, 4);
  }
}

void encode_udp_error(std::string& out, std::uint32_t transaction, std::string_view message) {
  out.clear();
  put(out, static_cast<std::uint32_t>(udp_action::error), 4);
  put(out, transaction, 4);
  out.append(message);
}

namespace {
std::uint64_t connection_mac(const connection_secret& key, std::uint64_t window, std::string_view address,
                             std::uint16_t port) {
  std::array<unsigned char, 8 + 16 + 2> msg{};
  std::size_t n = 0;
  for (int i = 7; i >= 0; --i)
    msg[n++] = static_cast<unsigned char>(window >> (8 * i));
  const std::size_t alen = std::min<std::size_t>(address.size(), 16);
  std::memcpy(msg.data() + n, address.data(), alen);
  n += alen;
  msg[n++] = static_cast<unsigned char>(port >> 8);
  msg[n++] = static_cast<unsigned char>(port);
  std::array<unsigned char, crypto_shorthash_BYTES> mac{};
  crypto_shorthash(mac.data(), msg.data(), n, key.data());
  std::uint64_t v = 0;
  for (unsigned char c : mac)
    v = v << 8 | c;
  return v & 0x00ff'ffff'ffff'ffffull;
}
}  // namespace

std::uint64_t make_connection_id(const connection_secret& key, std::string_view address, std::uint16_t port,
                                 std::uint64_t now_seconds) {
  const std::uint64_t window = now_seconds / connection_id_window;
  return (window & 0xff) << 56 | connection_mac(key, window, address, port);
}

bool check_connection_id(const connection_secret& key, std::uint64_t id, std::string_view address, std::uint16_t port,
                         std::uint64_t now_seconds) {
  const std::uint64_t current = now_seconds / connection_id_window;
  const std::uint64_t low = id >> 56;
  for (std::uint64_t back = 0; back < 3 && back <= current; ++back) {
    const std::uint64_t window = current - back;
    if ((window & 0xff) != low) continue;
    return connection_mac(key, window, address, port) == (id & 0x00ff'ffff'ffff'ffffull);
  }
  return false;
}

}  // namespace shoal::tracker
