// What the qBittorrent Web API's two source files share: states, priorities and the
// small reply helpers. Internal to src/daemon.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/http_server.hpp"
#include "session/torrent.hpp"

namespace shoal::daemon::qb {

namespace json = boost::json;

inline constexpr std::int64_t eta_unknown = 8640000;  // qBittorrent's "infinity": 100 days

inline bool complete(const torrent_status& st) {
  return st.total_wanted > 0 && st.have_wanted >= st.total_wanted;
}

inline std::string qb_state(const torrent_status& st) {
  const bool done = complete(st);
  switch (st.state) {
    case torrent_state::error:
      return "error";
    case torrent_state::checking:
      return done ? "checkingUP" : "checkingDL";
    case torrent_state::fetching_metadata:
      return "metaDL";
    case torrent_state::downloading:
      return st.download_rate > 0 ? "downloading" : "stalledDL";
    case torrent_state::seeding:
      return st.upload_rate > 0 ? "uploading" : "stalledUP";
    case torrent_state::queued:
      return done ? "queuedUP" : "queuedDL";
    case torrent_state::paused:
    case torrent_state::stopped:
      return done ? "pausedUP" : "pausedDL";
  }
  return "unknown";
}

// Engine file priorities (0 skip, low 1, normal 4, high 7) as qBittorrent's (0, 1, 6, 7).
inline int qb_file_prio(std::uint8_t p) {
  if (p == 0) return 0;
  return p >= 6 ? 7 : 1;
}
inline std::uint8_t engine_file_prio(int q) {
  if (q <= 0) return 0;
  if (q >= 6) return 7;
  return 4;
}

inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto e = s.find(sep, pos);
    auto item = s.substr(pos, e == std::string_view::npos ? std::string_view::npos : e - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\r'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\r'))
      item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (e == std::string_view::npos) break;
    pos = e + 1;
  }
  return out;
}

inline response text(const request& req, http::status st, std::string body) {
  return make_response(req, st, std::move(body), "text/plain; charset=UTF-8");
}
inline response ok(const request& req) {
  return text(req, http::status::ok, "");
}
inline response json_reply(const request& req, const json::value& v) {
  return make_response(req, http::status::ok, json::serialize(v), "application/json");
}

inline std::string fmt_ratio(double r) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", r);
  return b;
}

inline bool truthy(const std::string& v) {
  return v == "true" || v == "1" || v == "True";
}

}  // namespace shoal::daemon::qb
