#include "tracker/service.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace shoal::tracker {

namespace ip = boost::asio::ip;

namespace {

constexpr std::string_view not_listed = "torrent is not on this tracker's whitelist";
constexpr std::string_view tracker_full = "tracker is full: too many torrents";

peer_endpoint endpoint_of(const ip::address& a, std::uint16_t port) {
  if (a.is_v4()) return peer_endpoint::v4(a.to_v4().to_uint(), port);
  return peer_endpoint::v6_from(a.to_v6().to_bytes(), port);
}

}  // namespace

service::service(service_options opt, const connection_secret& secret, std::uint64_t seed)
    : opt_(std::move(opt)), secret_(secret), store_(opt_.limits, seed) {
  if (opt_.whitelist) {
    whitelist_ = std::move(*opt_.whitelist);
    opt_.whitelist.reset();
    std::sort(whitelist_->begin(), whitelist_->end());
    whitelist_->erase(std::unique(whitelist_->begin(), whitelist_->end()), whitelist_->end());
  }
}

ip::address service::unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::uint32_t service::peer_timeout() const {
  const std::uint32_t t = opt_.peer_timeout ? opt_.peer_timeout : 2 * opt_.interval;
  return std::min(t, max_peer_timeout);
}

bool service::allowed(const sha1_digest& h) const {
  return !whitelist_ || std::binary_search(whitelist_->begin(), whitelist_->end(), h);
}

std::uint32_t service::numwant_of(const announce_query& q, std::uint32_t cap) const {
  const std::uint32_t n = q.numwant_given ? q.req.numwant : opt_.default_numwant;
  return std::min({n, opt_.max_numwant, cap});
}

service::http_reply service::http_failure(std::string_view why) {
  ++stats_.failures_http;
  return {200, "text/plain", encode_http_failure(why)};
}

service::http_reply service::handle_http(std::string_view target, const ip::address& from, std::uint64_t now) {
  if (target.size() > max_request_target) {
    ++stats_.failures_http;
    return {414, "text/plain", encode_http_failure("request target longer than 2048 bytes")};
  }
  const auto [path, query] = split_target(target);
  if (path == "/announce") return http_announce(query, from, now);
  if (path == "/scrape") return http_scrape(query);
  if (path == "/stats") return {200, "application/json", stats_json(now)};
  ++stats_.failures_http;
  return {404, "text/plain", "not found: this tracker serves /announce, /scrape and /stats\n"};
}

service::http_reply service::http_announce(std::string_view query, const ip::address& from, std::uint64_t now) {
  auto q = parse_announce_query(query);
  if (!q) return http_failure(q.err().detail);
  const auto& req = q->req;
  if (!allowed(req.info_hash)) {
    ++stats_.not_whitelisted;
    return http_failure(not_listed);
  }
  const peer_endpoint ep = endpoint_of(unmapped(from), req.port);
  peers4_.clear();
  peers6_.clear();
  const bool seeder = req.left == 0;
  auto r =
      store_.announce(req.info_hash, ep, req.ev, seeder, numwant_of(*q, UINT32_MAX), now, true, true, peers4_, peers6_);
  if (r.status == swarm_store::outcome::torrent_limit) return http_failure(tracker_full);
  ++stats_.announces_http;
  announce_reply rep;
  rep.interval = opt_.interval;
  rep.min_interval = std::max<std::uint32_t>(opt_.interval / 2, 1);
  rep.complete = r.swarm.complete;
  rep.incomplete = r.swarm.incomplete;
  rep.downloaded = r.swarm.downloaded;
  rep.peers4 = peers4_;
  rep.peers6 = peers6_;
  if (r.status == swarm_store::outcome::not_stored) rep.warning = "swarm is full: you were not added";
  return {200, "text/plain", encode_http_announce(rep, q->compact)};
}

service::http_reply service::http_scrape(std::string_view query) {
  auto hashes = parse_scrape_query(query);
  if (!hashes) return http_failure(hashes.err().detail);
  ++stats_.scrapes_http;
  std::vector<std::pair<sha1_digest, scrape_entry>> files;
  for (const auto& h : *hashes) {
    if (!allowed(h)) continue;  // not tracked here: no entry, as for a torrent nobody announced
    const auto c = store_.scrape(h);
    files.emplace_back(h, scrape_entry{c.complete, c.incomplete, c.downloaded});
  }
  return {200, "text/plain", encode_http_scrape(files)};
}

bool service::handle_udp(std::string_view pkt, const ip::address& from_raw, std::uint16_t port, std::uint64_t now,
                         std::string& out) {
  if (pkt.size() < udp_header_size) {
    ++stats_.ignored_udp;  // no transaction id to answer with
    return false;
  }
  const ip::address from = unmapped(from_raw);
  const peer_endpoint src = endpoint_of(from, port);
  const std::uint32_t tid = udp_transaction_of(pkt);
  auto fail = [&](std::string_view why, bool verified) {
    encode_udp_error(out, tid, why);
    // A source that has not proved its address (no valid connection id) never gets more
    // bytes than it sent, so spoofed packets cannot be amplified.
    if (!verified && out.size() > pkt.size()) {
      ++stats_.ignored_udp;
      return false;
    }
    ++stats_.failures_udp;
    return true;
  };
  auto req = parse_udp_request(pkt);
  if (!req) {
    // A connect with the wrong magic number is not a tracker packet at all: stay silent.
    const bool connect = pkt[8] == 0 && pkt[9] == 0 && pkt[10] == 0 && pkt[11] == 0;
    if (connect) {
      ++stats_.ignored_udp;
      return false;
    }
    std::uint64_t id = 0;
    for (int i = 0; i < 8; ++i)
      id = id << 8 | static_cast<unsigned char>(pkt[static_cast<std::size_t>(i)]);
    return fail(req.err().detail, check_connection_id(secret_, id, src.address(), src.port(), now));
  }
  if (req->action == udp_action::connect) {
    ++stats_.connects_udp;
    encode_udp_connect(out, tid, make_connection_id(secret_, src.address(), src.port(), now));
    return true;
  }
  if (!check_connection_id(secret_, req->connection_id, src.address(), src.port(), now)) {
    return fail("connection id expired or not valid: connect again", false);
  }
  if (req->action == udp_action::scrape) {
    ++stats_.scrapes_udp;
    std::vector<scrape_entry> entries;
    entries.reserve(req->scrape_hashes.size() / 20);
    for (std::size_t i = 0; i + 20 <= req->scrape_hashes.size(); i += 20) {
      sha1_digest h;
      std::copy_n(reinterpret_cast<const std::uint8_t*>(req->scrape_hashes.data() + i), 20, h.begin());
      scrape_entry e;
      if (allowed(h)) {
        const auto c = store_.scrape(h);
        e = scrape_entry{c.complete, c.incomplete, c.downloaded};
      }
      entries.push_back(e);
    }
    encode_udp_scrape(out, tid, entries);
    return true;
  }
  // announce
  const auto& q = req->announce;
  if (!allowed(q.req.info_hash)) {
    ++stats_.not_whitelisted;
    return fail(not_listed, true);
  }
  const peer_endpoint ep = endpoint_of(from, q.req.port);
  const std::uint32_t cap = static_cast<std::uint32_t>(max_udp_reply_peer_bytes / (ep.v6 ? 18 : 6));
  peers4_.clear();
  peers6_.clear();
  auto r = store_.announce(q.req.info_hash, ep, q.req.ev, q.req.left == 0, numwant_of(q, cap), now, !ep.v6, ep.v6,
                           peers4_, peers6_);
  if (r.status == swarm_store::outcome::torrent_limit) return fail(tracker_full, true);
  ++stats_.announces_udp;
  encode_udp_announce(out, tid, opt_.interval, r.swarm.incomplete, r.swarm.complete, ep.v6 ? peers6_ : peers4_);
  return true;
}

std::string service::stats_json(std::uint64_t uptime_seconds) const {
  namespace json = boost::json;
  const auto& s = store_;
  json::object o;
  o["torrents"] = s.torrents();
  o["peers"] = s.peers();
  o["seeders"] = s.seeders();
  o["leechers"] = s.leechers();
  o["peers_ipv6"] = s.peers_v6();
  o["completed"] = s.completed();
  o["announces"] = json::object{{"http", stats_.announces_http}, {"udp", stats_.announces_udp}};
  o["scrapes"] = json::object{{"http", stats_.scrapes_http}, {"udp", stats_.scrapes_udp}};
  o["connects"] = json::object{{"udp", stats_.connects_udp}};
  o["failures"] = json::object{{"http", stats_.failures_http}, {"udp", stats_.failures_udp}};
  o["not_whitelisted"] = stats_.not_whitelisted;
  o["ignored_udp"] = stats_.ignored_udp;
  o["whitelist"] = whitelist_size();
  o["peer_storage_bytes"] = s.peer_bytes();
  o["interval"] = opt_.interval;
  o["peer_timeout"] = peer_timeout();
  o["uptime_seconds"] = uptime_seconds;
  return json::serialize(o);
}

}  // namespace shoal::tracker
