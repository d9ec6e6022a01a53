#include "tracker/announce.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/bencode.hpp"

namespace shoal::tracker {

using detail::get;
using detail::put;

namespace {

namespace ip = boost::asio::ip;
using bencode::node;

std::string pct(std::string_view raw) {
  return boost::urls::encode(boost::urls::string_view(raw.data(), raw.size()), boost::urls::unreserved_chars);
}

const char* event_name(event e) {
  switch (e) {
    case event::completed:
      return "completed";
    case event::started:
      return "started";
    case event::stopped:
      return "stopped";
    case event::none:
      break;
  }
  return nullptr;
}

void compact_peers(std::string_view s, bool v6, std::vector<ip::tcp::endpoint>& out) {
  const std::size_t step = v6 ? 18 : 6;
  for (std::size_t i = 0; i + step <= s.size() && out.size() < max_reply_peers; i += step) {
    const auto port = static_cast<std::uint16_t>(get(s, i + step - 2, 2));
    if (port == 0) continue;
    if (v6) {
      ip::address_v6::bytes_type b;
      std::copy_n(s.data() + i, 16, reinterpret_cast<char*>(b.data()));
      out.emplace_back(ip::address_v6(b), port);
    } else {
      out.emplace_back(ip::address_v4(static_cast<std::uint32_t>(get(s, i, 4))), port);
    }
  }
}

error bad(const std::string& why) {
  return error{errc::syntax, "tracker reply: " + why, no_offset};
}

std::uint32_t clamp_interval(std::int64_t v) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(v, min_interval, max_interval));
}

}  // namespace

std::string redact_url(std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (u && u->has_authority()) {
    std::string out = std::string(u->scheme()) + "://" + std::string(u->encoded_host_and_port());
    out += u->encoded_path();
    return out;
  }
  // Not a URI we can read: keep what comes before any query, fragment or user info.
  std::string_view s = url.substr(0, url.find_first_of("?#"));
  const auto scheme_end = s.find("://");
  const auto at = s.find('@', scheme_end == std::string_view::npos ? 0 : scheme_end + 3);
  if (at != std::string_view::npos && scheme_end != std::string_view::npos) {
    return std::string(s.substr(0, scheme_end + 3)) + std::string(s.substr(at + 1));
  }
  return std::string(s);
}

std::string announce_url(std::string_view base, const announce_request& r) {
  std::string u(base);
  u += u.find('?') == std::string::npos ? '?' : '&';
  u += "info_hash=" + pct(as_view(r.info_hash));
  u += "&peer_id=" + pct(std::string_view(reinterpret_cast<const char*>(r.peer_id.data()), 20));
  u += "&port=" + std::to_string(r.port);
  u += "&uploaded=" + std::to_string(r.uploaded);
  u += "&downloaded=" + std::to_string(r.downloaded);
  u += "&left=" + std::to_string(r.left);
  u += "&compact=1&no_peer_id=1";
  u += "&numwant=" + std::to_string(r.numwant);
  u += "&key=" + std::to_string(r.key);
  if (const char* e = event_name(r.ev)) u += std::string("&event=") + e;
  return u;
}

std::optional<std::string> scrape_url(std::string_view announce, const sha1_digest& h) {
  const auto q = announce.find('?');
  const std::string_view path = announce.substr(0, q);
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos || path.substr(slash + 1, 8) != "announce") return std::nullopt;
  std::string u(announce.substr(0, slash + 1));
  u += "scrape";
  u += announce.substr(slash + 9);
  u += u.find('?') == std::string::npos ? '?' : '&';
  u += "info_hash=" + pct(as_view(h));
  return u;
}

std::optional<std::string> scrape_url(std::string_view announce, const std::vector<sha1_digest>& hashes) {
  if (hashes.empty()) return std::nullopt;
  auto u = scrape_url(announce, hashes.front());
  if (!u) return std::nullopt;
  for (std::size_t i = 1; i < hashes.size(); ++i)
    *u += "&info_hash=" + pct(as_view(hashes[i]));
  return u;
}

std::vector<std::pair<std::size_t, std::size_t>> scrape_batches(std::string_view announce,
                                                                const std::vector<sha1_digest>& hashes) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (announce.rfind("udp://", 0) == 0) {
    for (std::size_t at = 0; at < hashes.size(); at += max_udp_scrape)
      out.emplace_back(at, std::min(hashes.size(), at + max_udp_scrape));
    return out;
  }
  auto base = scrape_url(announce, sha1_digest{});
  // No scrape address, or one so long that not even one escaped hash fits the limit.
  if (!base || base->size() > max_scrape_url) return out;
  // The URL with one hash, then each further hash as "&info_hash=" and its escaped bytes.
  const std::size_t first = base->size() - pct(std::string(20, '\0')).size();
  std::size_t begin = 0, len = first;
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    const std::size_t add = pct(as_view(hashes[i])).size() + (i == begin ? 0 : 11);
    if (i > begin && len + add > max_scrape_url) {
      out.emplace_back(begin, i);
      begin = i;
      len = first;
      --i;
      continue;
    }
    len += add;
  }
  if (begin < hashes.size()) out.emplace_back(begin, hashes.size());
  return out;
}

result<announce_response> parse_announce_reply(std::string_view body) {
  if (body.size() > max_reply_size) return bad("larger than 4 MiB");
  bencode::limits lim;
  lim.depth = 8;  // tracker replies are shallow; deep nesting is hostile
  lim.tokens = 200000;
  auto doc = bencode::decode(body, bencode::mode::lenient, lim);
  if (!doc) return bad(doc.err().message());
  node root = doc->root();
  if (!root.is_dict()) return bad("not a dictionary");
  if (node f = root.find("failure reason"); f.is_string()) {
    return error{errc::invalid_argument, "tracker says: " + std::string(f.as_string().substr(0, 512)), no_offset};
  }
  announce_response r;
  if (node i = root.find("interval"); i.is_int()) r.interval = clamp_interval(i.as_int());
  if (node i = root.find("min interval"); i.is_int()) r.min_interval = clamp_interval(i.as_int());
  if (node c = root.find("complete"); c.is_int() && c.as_int() >= 0)
    r.complete = static_cast<std::uint32_t>(c.as_int());
  if (node c = root.find("incomplete"); c.is_int() && c.as_int() >= 0) {
    r.incomplete = static_cast<std::uint32_t>(c.as_int());
  }
  if (node w = root.find("warning message"); w.is_string()) r.warning = std::string(w.as_string().substr(0, 512));
  node peers = root.find("peers");
  if (peers.is_string()) {
    compact_peers(peers.as_string(), false, r.peers);
  } else if (peers.is_list()) {
    for (node p : peers) {
      if (r.peers.size() >= max_reply_peers) break;
      node a = p.find("ip"), port = p.find("port");
      if (!a.is_string() || !port.is_int() || port.as_int() <= 0 || port.as_int() > 65535) continue;
      boost::system::error_code ec;
      auto addr = ip::make_address(std::string(a.as_string()), ec);
      if (!ec) r.peers.emplace_back(addr, static_cast<std::uint16_t>(port.as_int()));
    }
  }
  if (node p6 = root.find("peers6"); p6.is_string()) compact_peers(p6.as_string(), true, r.peers);
  if (node e = root.find("external ip"); e.is_string()) {
    auto s = e.as_string();
    if (s.size() == 4) r.external_ip = ip::address_v4(static_cast<std::uint32_t>(get(s, 0, 4)));
    if (s.size() == 16) {
      ip::address_v6::bytes_type b;
      std::copy_n(s.data(), 16, reinterpret_cast<char*>(b.data()));
      r.external_ip = ip::address_v6(b);
    }
  }
  return r;
}

result<std::vector<std::optional<scrape_entry>>> parse_scrape_replies(std::string_view body,
                                                                      const std::vector<sha1_digest>& hashes) {
  if (body.size() > max_reply_size) return bad("larger than 4 MiB");
  bencode::limits lim;
  lim.depth = 8;
  auto doc = bencode::decode(body, bencode::mode::lenient, lim);
  if (!doc) return bad(doc.err().message());
  node root = doc->root();
  if (node f = root.find("failure reason"); f.is_string()) {
    return error{errc::invalid_argument, "tracker says: " + std::string(f.as_string().substr(0, 512)), no_offset};
  }
  node files = root.find("files");
  if (!files.is_dict()) return bad("no files dictionary");
  std::vector<std::optional<scrape_entry>> out;
  out.reserve(hashes.size());
  for (const auto& h : hashes) {
    node e = files.find(as_view(h));
    if (!e.is_dict()) {
      out.emplace_back();
      continue;
    }
    auto num = [&](const char* k) {
      node n = e.find(k);
      return n.is_int() && n.as_int() >= 0 ? static_cast<std::uint32_t>(std::min<std::int64_t>(n.as_int(), UINT32_MAX))
                                           : 0u;
    };
    out.push_back(scrape_entry{num("complete"), num("incomplete"), num("downloaded")});
  }
  return out;
}

result<scrape_entry> parse_scrape_reply(std::string_view body, const sha1_digest& h) {
  auto r = parse_scrape_replies(body, {h});
  if (!r) return r.err();
  if (!r->front()) return bad("no entry for this torrent");
  return *r->front();
}

std::string udp_connect_request(std::uint32_t transaction) {
  std::string p;
  put(p, udp_protocol_id, 8);
  put(p, 0, 4);
  put(p, transaction, 4);
  return p;
}

result<std::uint64_t> udp_connect_reply(std::string_view pkt, std::uint32_t transaction) {
  if (pkt.size() >= 8 && get(pkt, 0, 4) == 3 && get(pkt, 4, 4) == transaction) {
    return error{errc::invalid_argument, "tracker says: " + std::string(pkt.substr(8, 512)), no_offset};
  }
  if (pkt.size() < 16) return bad("UDP connect reply shorter than 16 bytes");
  if (get(pkt, 0, 4) != 0 || get(pkt, 4, 4) != transaction) return bad("UDP connect reply does not match the request");
  return get(pkt, 8, 8);
}

std::string udp_announce_request(std::uint64_t connection, std::uint32_t transaction, const announce_request& r) {
  std::string p;
  put(p, connection, 8);
  put(p, 1, 4);
  put(p, transaction, 4);
  p.append(as_view(r.info_hash));
  p.append(reinterpret_cast<const char*>(r.peer_id.data()), 20);
  put(p, r.downloaded, 8);
  put(p, r.left, 8);
  put(p, r.uploaded, 8);
  const std::uint32_t ev = r.ev == event::completed ? 1 : r.ev == event::started ? 2 : r.ev == event::stopped ? 3 : 0;
  put(p, ev, 4);
  put(p, 0, 4);  // our address: let the tracker see it
  put(p, r.key, 4);
  put(p, r.numwant, 4);
  put(p, r.port, 2);
  return p;
}

result<announce_response> udp_announce_reply(std::string_view pkt, std::uint32_t transaction, bool ipv6) {
  if (pkt.size() >= 8 && get(pkt, 0, 4) == 3 && get(pkt, 4, 4) == transaction) {
    return error{errc::invalid_argument, "tracker says: " + std::string(pkt.substr(8, 512)), no_offset};
  }
  if (pkt.size() < 20) return bad("UDP announce reply shorter than 20 bytes");
  if (get(pkt, 0, 4) != 1 || get(pkt, 4, 4) != transaction) return bad("UDP announce reply does not match the request");
  announce_response r;
  r.interval = clamp_interval(static_cast<std::int64_t>(get(pkt, 8, 4)));
  r.incomplete = static_cast<std::uint32_t>(get(pkt, 12, 4));
  r.complete = static_cast<std::uint32_t>(get(pkt, 16, 4));
  compact_peers(pkt.substr(20), ipv6, r.peers);
  return r;
}

std::string udp_scrape_request(std::uint64_t connection, std::uint32_t transaction,
                               const std::vector<sha1_digest>& hashes) {
  std::string p;
  put(p, connection, 8);
  put(p, 2, 4);
  put(p, transaction, 4);
  for (const auto& h : hashes)
    p.append(as_view(h));
  return p;
}

result<std::vector<scrape_entry>> udp_scrape_reply(std::string_view pkt, std::uint32_t transaction, std::size_t count) {
  if (pkt.size() >= 8 && get(pkt, 0, 4) == 3 && get(pkt, 4, 4) == transaction) {
    return error{errc::invalid_argument, "tracker says: " + std::string(pkt.substr(8, 512)), no_offset};
  }
  if (pkt.size() < 8 || get(pkt, 0, 4) != 2 || get(pkt, 4, 4) != transaction) {
    return bad("UDP scrape reply does not match the request");
  }
  if (pkt.size() < 8 + 12 * count)
    return bad("UDP scrape reply shorter than its " + std::to_string(count) + " entries");
  std::vector<scrape_entry> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t at = 8 + 12 * i;
    // BEP 15 orders them seeders, completed, leechers.
    out.push_back(scrape_entry{static_cast<std::uint32_t>(get(pkt, at, 4)),
                               static_cast<std::uint32_t>(get(pkt, at + 8, 4)),
                               static_cast<std::uint32_t>(get(pkt, at + 4, 4))});
  }
  return out;
}

}  // namespace shoal::tracker
