#include "dht/krpc.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "core/bencode.hpp"

namespace shoal::dht {

namespace ip = boost::asio::ip;

namespace {

error bad(std::string what) {
  return error{errc::syntax, "krpc: " + std::move(what), no_offset};
}

std::optional<node_id> as_id(std::string_view s) {
  if (s.size() != 20) return std::nullopt;
  node_id id;
  std::memcpy(id.data(), s.data(), 20);
  return id;
}

std::string id_bytes(const node_id& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

// Reads the fields of an "a" or "r" dictionary into m. Returns an error text or "".
std::string read_body(const bencode::node& d, message& m) {
  if (auto n = d.find("id"); n) {
    auto id = as_id(n.as_string());
    if (!n.is_string() || !id) return "\"id\" is not 20 bytes";
    m.id = id;
  }
  if (auto n = d.find("target"); n) {
    auto id = as_id(n.as_string());
    if (!n.is_string() || !id) return "\"target\" is not 20 bytes";
    m.target = id;
  }
  if (auto n = d.find("info_hash"); n) {
    auto id = as_id(n.as_string());
    if (!n.is_string() || !id) return "\"info_hash\" is not 20 bytes";
    m.info_hash = id;
  }
  if (auto n = d.find("token"); n) {
    if (!n.is_string() || n.as_string().size() > 64) return "\"token\" is not a string of at most 64 bytes";
    m.token = n.as_string();
  }
  if (auto n = d.find("port"); n) {
    if (!n.is_int() || n.as_int() < 0 || n.as_int() > 65535) return "\"port\" is not a port number";
    m.port = static_cast<std::uint16_t>(n.as_int());
  }
  if (auto n = d.find("implied_port"); n.is_int()) m.implied_port = n.as_int() != 0;
  if (auto n = d.find("want"); n.is_list()) {
    for (auto w : n) {
      if (w.as_string() == "n4") m.want4 = true;
      if (w.as_string() == "n6") m.want6 = true;
    }
  }
  for (const bool v6 : {false, true}) {
    auto n = d.find(v6 ? "nodes6" : "nodes");
    if (!n) continue;
    const std::size_t each = v6 ? 38 : 26;
    auto s = n.as_string();
    if (!n.is_string() || s.size() % each != 0) return v6 ? "\"nodes6\" is not compact" : "\"nodes\" is not compact";
    auto& out = v6 ? m.nodes6 : m.nodes;
    for (std::size_t i = 0; i + each <= s.size() && out.size() < max_nodes_in_message; i += each) {
      node_entry e;
      std::memcpy(e.id.data(), s.data() + i, 20);
      e.ep = *parse_compact_endpoint(s.substr(i + 20, each - 20));
      out.push_back(e);
    }
  }
  if (auto n = d.find("values"); n) {
    if (!n.is_list()) return "\"values\" is not a list";
    for (auto v : n) {
      if (m.values.size() >= max_values_in_message) break;
      auto ep = parse_compact_endpoint(v.as_string());
      if (v.is_string() && ep) m.values.emplace_back(ep->address(), ep->port());
    }
  }
  if (auto n = d.find("scrape"); n.is_int()) m.scrape = n.as_int() != 0;
  if (auto n = d.find("seed"); n.is_int()) m.seed = n.as_int() != 0;
  if (auto n = d.find("noseed"); n.is_int()) m.noseed = n.as_int() != 0;
  if (auto n = d.find("BFsd"); n.is_string() && n.as_string().size() == 256) m.bf_seeds = n.as_string();
  if (auto n = d.find("BFpe"); n.is_string() && n.as_string().size() == 256) m.bf_peers = n.as_string();
  if (auto n = d.find("v"); n) m.v = n.raw();
  if (auto n = d.find("k"); n) {
    if (!n.is_string() || n.as_string().size() != 32) return "\"k\" is not a 32-byte key";
    m.k = n.as_string();
  }
  if (auto n = d.find("sig"); n) {
    if (!n.is_string() || n.as_string().size() != 64) return "\"sig\" is not a 64-byte signature";
    m.sig = n.as_string();
  }
  if (auto n = d.find("salt"); n) {
    if (!n.is_string()) return "\"salt\" is not a string";
    m.salt = n.as_string();
  }
  if (auto n = d.find("seq"); n) {
    if (!n.is_int()) return "\"seq\" is not an integer";
    m.seq = n.as_int();
  }
  if (auto n = d.find("cas"); n) {
    if (!n.is_int()) return "\"cas\" is not an integer";
    m.cas = n.as_int();
  }
  if (auto n = d.find("interval"); n.is_int()) m.interval = n.as_int();
  if (auto n = d.find("num"); n.is_int()) m.num = n.as_int();
  if (auto n = d.find("samples"); n) {
    if (!n.is_string() || n.as_string().size() % 20 != 0) return "\"samples\" is not a list of 20-byte hashes";
    m.samples = n.as_string();
  }
  return "";
}

}  // namespace

std::string_view method_name(method m) {
  switch (m) {
    case method::ping:
      return "ping";
    case method::find_node:
      return "find_node";
    case method::get_peers:
      return "get_peers";
    case method::announce_peer:
      return "announce_peer";
    case method::get:
      return "get";
    case method::put:
      return "put";
    case method::sample_infohashes:
      return "sample_infohashes";
    case method::unknown:
      break;
  }
  return "";
}

method method_from_name(std::string_view s) {
  for (auto m : {method::ping, method::find_node, method::get_peers, method::announce_peer, method::get, method::put,
                 method::sample_infohashes}) {
    if (method_name(m) == s) return m;
  }
  return method::unknown;
}

std::optional<udp::endpoint> parse_compact_endpoint(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  if (s.size() == 6) {
    ip::address_v4::bytes_type b;
    std::memcpy(b.data(), p, 4);
    return udp::endpoint(ip::address_v4(b), static_cast<std::uint16_t>(p[4] << 8 | p[5]));
  }
  if (s.size() == 18) {
    ip::address_v6::bytes_type b;
    std::memcpy(b.data(), p, 16);
    return udp::endpoint(ip::address_v6(b), static_cast<std::uint16_t>(p[16] << 8 | p[17]));
  }
  return std::nullopt;
}

std::string compact_endpoint(const udp::endpoint& ep) {
  std::string out;
  if (ep.address().is_v4()) {
    auto b = ep.address().to_v4().to_bytes();
    out.assign(reinterpret_cast<const char*>(b.data()), b.size());
  } else {
    auto b = ep.address().to_v6().to_bytes();
    out.assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  out.push_back(static_cast<char>(ep.port() >> 8));
  out.push_back(static_cast<char>(ep.port() & 0xff));
  return out;
}

std::string compact_nodes(const std::vector<node_entry>& nodes, bool v6) {
  std::string out;
  for (const auto& n : nodes) {
    if (n.ep.address().is_v6() != v6) continue;
    out += id_bytes(n.id);
    out += compact_endpoint(n.ep);
  }
  return out;
}

result<message> decode(std::string_view packet) {
  if (packet.size() > 4 * max_packet) return bad("datagram too large");
  bencode::limits lim;
  lim.depth = 32;
  lim.tokens = 4096;
  auto doc = bencode::decode(packet, bencode::mode::lenient, lim);
  if (!doc) return bad(doc.err().message());
  auto root = doc->root();
  if (!root.is_dict()) return bad("not a dictionary");
  message m;
  auto t = root.find("t");
  if (!t.is_string() || t.as_string().size() > max_transaction_id) return bad("no transaction id");
  m.tid = t.as_string();
  auto y = root.find("y").as_string();
  if (y == "q") {
    m.type = msg_type::query;
  } else if (y == "r") {
    m.type = msg_type::response;
  } else if (y == "e") {
    m.type = msg_type::error;
  } else {
    return bad("\"y\" is not q, r or e");
  }
  if (auto v = root.find("v"); v.is_string()) m.version = v.as_string().substr(0, 16);
  if (auto n = root.find("ro"); n.is_int()) m.read_only = n.as_int() == 1;
  if (auto n = root.find("ip"); n.is_string()) m.ip = parse_compact_endpoint(n.as_string());
  std::string why;
  switch (m.type) {
    case msg_type::query: {
      auto q = root.find("q");
      if (!q.is_string()) return bad("query without \"q\"");
      m.method_text = q.as_string().substr(0, 32);
      m.meth = method_from_name(q.as_string());
      auto a = root.find("a");
      if (!a.is_dict()) return bad("query without \"a\"");
      why = read_body(a, m);
      if (why.empty() && !m.id) why = "query without an id";
      break;
    }
    case msg_type::response: {
      auto r = root.find("r");
      if (!r.is_dict()) return bad("response without \"r\"");
      why = read_body(r, m);
      if (why.empty() && !m.id) why = "response without an id";
      break;
    }
    case msg_type::error: {
      auto e = root.find("e");
      if (!e.is_list() || e.size() < 2) return bad("error without [code, message]");
      auto it = e.begin();
      auto code = *it;
      ++it;
      auto text = *it;
      if (!code.is_int() || !text.is_string()) return bad("error without [code, message]");
      m.error_code = static_cast<int>(std::clamp<std::int64_t>(code.as_int(), -1000000, 1000000));
      m.error_text = text.as_string().substr(0, 200);
      break;
    }
  }
  if (!why.empty()) return bad(why);
  return m;
}

std::string encode(const message& m) {
  // Keys with their encoded values, sorted at the end: "v" is spliced in raw so a stored
  // item goes out with exactly the bytes its signature covers.
  std::vector<std::pair<std::string, std::string>> body;
  auto put = [&body](std::string key, const bencode::value& v) {
    body.emplace_back(std::move(key), bencode::encode(v));
  };
  if (m.id) put("id", id_bytes(*m.id));
  if (m.target) put("target", id_bytes(*m.target));
  if (m.info_hash) put("info_hash", id_bytes(*m.info_hash));
  if (!m.token.empty()) put("token", m.token);
  if (m.port) put("port", static_cast<std::int64_t>(*m.port));
  if (m.implied_port) put("implied_port", 1);
  if (m.want4 || m.want6) {
    bencode::list w;
    if (m.want4) w.emplace_back("n4");
    if (m.want6) w.emplace_back("n6");
    put("want", w);
  }
  if (!m.nodes.empty()) put("nodes", compact_nodes(m.nodes, false));
  if (!m.nodes6.empty()) put("nodes6", compact_nodes(m.nodes6, true));
  if (!m.values.empty()) {
    bencode::list vals;
    for (const auto& ep : m.values)
      vals.emplace_back(compact_endpoint(udp::endpoint(ep.address(), ep.port())));
    put("values", vals);
  }
  if (m.scrape) put("scrape", 1);
  if (m.seed) put("seed", 1);
  if (m.noseed) put("noseed", 1);
  if (!m.bf_seeds.empty()) put("BFsd", m.bf_seeds);
  if (!m.bf_peers.empty()) put("BFpe", m.bf_peers);
  if (!m.v.empty()) body.emplace_back("v", m.v);
  if (!m.k.empty()) put("k", m.k);
  if (!m.sig.empty()) put("sig", m.sig);
  if (!m.salt.empty()) put("salt", m.salt);
  if (m.seq) put("seq", *m.seq);
  if (m.cas) put("cas", *m.cas);
  if (m.interval) put("interval", *m.interval);
  if (m.num) put("num", *m.num);
  if (!m.samples.empty() || m.num) put("samples", m.samples);
  std::sort(body.begin(), body.end());
  std::string b = "d";
  for (const auto& [k, v] : body) {
    b += std::to_string(k.size()) + ":" + k;
    b += v;
  }
  b += "e";

  std::string out = "d";
  auto key = [&out](std::string_view k) {
    out += std::to_string(k.size()) + ":";
    out += k;
  };
  // Top-level keys in order: a, e, ip, q, r, ro, t, v, y.
  if (m.type == msg_type::query) {
    key("a");
    out += b;
  }
  if (m.type == msg_type::error) {
    key("e");
    out += bencode::encode(bencode::list{static_cast<std::int64_t>(m.error_code), m.error_text});
  }
  if (m.ip) {
    key("ip");
    out += bencode::encode(compact_endpoint(*m.ip));
  }
  if (m.type == msg_type::query) {
    key("q");
    out +=
        bencode::encode(std::string(m.meth == method::unknown ? std::string_view(m.method_text) : method_name(m.meth)));
  }
  if (m.type == msg_type::response) {
    key("r");
    out += b;
  }
  if (m.read_only) {
    key("ro");
    out += "i1e";
  }
  key("t");
  out += bencode::encode(m.tid);
  if (!m.version.empty()) {
    key("v");
    out += bencode::encode(m.version);
  }
  key("y");
  out += m.type == msg_type::query ? "1:q" : m.type == msg_type::response ? "1:r" : "1:e";
  out += "e";
  return out;
}

std::mt19937_64& random_engine() {
  static thread_local std::mt19937_64 g{std::random_device{}()};
  return g;
}

node_id distance(const node_id& a, const node_id& b) {
  node_id d;
  for (std::size_t i = 0; i < d.size(); ++i)
    d[i] = a[i] ^ b[i];
  return d;
}

int common_prefix_bits(const node_id& a, const node_id& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::uint8_t x = a[i] ^ b[i];
    if (x != 0) return static_cast<int>(i * 8) + std::countl_zero(x);
  }
  return 160;
}

bool closer(const node_id& target, const node_id& a, const node_id& b) {
  for (std::size_t i = 0; i < target.size(); ++i) {
    const std::uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
    if (da != db) return da < db;
  }
  return false;
}

std::uint32_t crc32c(const std::uint8_t* data, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i)
    crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

namespace {
std::uint32_t id_prefix_crc(const ip::address& addr, std::uint8_t r) {
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    static constexpr std::uint8_t mask[4] = {0x03, 0x0f, 0x3f, 0xff};
    for (int i = 0; i < 4; ++i)
      b[i] &= mask[i];
    b[0] |= static_cast<std::uint8_t>((r & 7) << 5);
    return crc32c(b.data(), 4);
  }
  auto b = addr.to_v6().to_bytes();
  static constexpr std::uint8_t mask[8] = {0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff};
  for (int i = 0; i < 8; ++i)
    b[i] &= mask[i];
  b[0] |= static_cast<std::uint8_t>((r & 7) << 5);
  return crc32c(b.data(), 8);
}
}  // namespace

node_id make_node_id(const ip::address& addr, std::uint8_t r, const node_id& random) {
  node_id id = random;
  const std::uint32_t crc = id_prefix_crc(addr, r);
  id[0] = static_cast<std::uint8_t>(crc >> 24);
  id[1] = static_cast<std::uint8_t>(crc >> 16);
  id[2] = static_cast<std::uint8_t>(((crc >> 8) & 0xf8) | (random[2] & 7));
  id[19] = r;
  return id;
}

bool is_local_address(const ip::address& addr) {
  if (addr.is_loopback() || addr.is_unspecified()) return true;
  if (addr.is_v4()) {
    const auto b = addr.to_v4().to_bytes();
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 169 && b[1] == 254) || b[0] == 127;
  }
  const auto v6 = addr.to_v6();
  if (v6.is_v4_mapped()) return is_local_address(ip::make_address_v4(ip::v4_mapped, v6));
  const auto b = v6.to_bytes();
  return v6.is_link_local() || (b[0] & 0xfe) == 0xfc;
}

std::vector<ip::address> local_host_addresses(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "localhost" || lower == "localhost.") return {ip::address_v4::loopback(), ip::address_v6::loopback()};
  boost::system::error_code ec;
  const auto a = ip::make_address(lower, ec);
  if (ec || !is_local_address(a)) return {};
  return {a};
}

bool node_id_valid_for(const node_id& id, const ip::address& addr) {
  if (is_local_address(addr)) return true;
  const std::uint32_t crc = id_prefix_crc(addr, id[19]);
  return id[0] == static_cast<std::uint8_t>(crc >> 24) && id[1] == static_cast<std::uint8_t>(crc >> 16) &&
         (id[2] & 0xf8) == static_cast<std::uint8_t>((crc >> 8) & 0xf8);
}

std::string signature_buffer(std::string_view salt, std::int64_t seq, std::string_view v) {
  std::string out;
  if (!salt.empty()) {
    out += "4:salt" + std::to_string(salt.size()) + ":";
    out += salt;
  }
  out += "3:seqi" + std::to_string(seq) + "e1:v";
  out += v;
  return out;
}

node_id mutable_target(std::string_view k, std::string_view salt) {
  std::string buf(k);
  buf += salt;
  return sha1(buf);
}

node_id immutable_target(std::string_view v) {
  return sha1(v);
}

void bloom_insert(std::string& filter, const ip::address& addr) {
  if (filter.size() != 256) filter.assign(256, '\0');
  std::string bytes;
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    bytes.assign(reinterpret_cast<const char*>(b.data()), b.size());
  } else {
    auto b = addr.to_v6().to_bytes();
    bytes.assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  const auto h = sha1(bytes);
  const unsigned i1 = (h[0] | (h[1] << 8)) % 2048u, i2 = (h[2] | (h[3] << 8)) % 2048u;
  filter[i1 / 8] = static_cast<char>(static_cast<unsigned char>(filter[i1 / 8]) | (1u << (i1 % 8)));
  filter[i2 / 8] = static_cast<char>(static_cast<unsigned char>(filter[i2 / 8]) | (1u << (i2 % 8)));
}

double bloom_estimate(std::string_view filter) {
  if (filter.size() != 256) return 0;
  int zero = 0;
  for (unsigned char c : filter)
    zero += 8 - std::popcount(c);
  if (zero == 0) return 8000;  // saturated: past what the filter can count
  if (zero >= 2048) return 0;  // empty (the formula's clamp below would say 0.5)
  const double m = 2048, k = 2;
  const double c = std::min(m - 1, static_cast<double>(zero));
  return std::log(c / m) / (k * std::log(1 - 1 / m));
}

}  // namespace shoal::dht
