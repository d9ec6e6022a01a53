// qBittorrent's Web API v2 (as qbittorrent-nox 4.5 answers it, webapiVersion 2.8.19) over
// the daemon: the calls Sonarr, Radarr, Flood and the phone apps make. Categories and tags
// are torrent labels: a torrent's category is its first label that names a category, its
// tags the other labels. Categories (with their save paths) live in STATE/categories.json.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <string_view>

#include "daemon/http_server.hpp"

namespace shoal::daemon {

class daemon;

class qbittorrent_api {
 public:
  explicit qbittorrent_api(daemon& d);
  // `path` is what follows /api/v2/ (auth/login, torrents/info, ...). The daemon's address
  // and Host checks ran already; this checks the Origin/Referer (CSRF) and the SID cookie.
  response handle(const request& req, std::string_view path, const tcp::endpoint& peer);

 private:
  using form = std::map<std::string, std::string>;
  response login(const request& req, const form& f, const tcp::endpoint& peer);
  response torrents_add(const request& req, const form& f);
  // The calls on torrents named by "hashes" or "hash" (qbittorrent_torrents.cpp).
  response torrents_call(const request& req, std::string_view path, const form& f);
  // rss/*: feeds and auto-downloading rules (qbittorrent_rss.cpp); `call` follows "rss/".
  response rss_call(const request& req, std::string_view call, const form& f);
  boost::json::array torrents_info(const form& f);
  // Every torrent as torrents/info lists it, by hash (sync/maindata's snapshots).
  boost::json::object torrent_map();
  boost::json::object server_state();
  boost::json::object categories_json() const;
  boost::json::array tags_json();
  boost::json::object preferences();
  void set_preferences(const boost::json::object& p);
  response sync_maindata(const request& req, const form& f);
  bool authorized(const request& req, const tcp::endpoint& peer);
  void load_categories();
  void save_categories() const;

  daemon& d_;
  std::map<std::string, std::chrono::steady_clock::time_point> sids_;  // SID -> expiry
  std::map<std::string, std::string> categories_;                      // name -> save path
  std::map<std::string, bool> tags_;                                   // made with createTags
  struct snapshot {
    std::uint64_t rid = 0;
    boost::json::object torrents, server_state, categories;
    boost::json::array tags;
  };
  std::deque<snapshot> snapshots_;  // the last few answers of sync/maindata, for deltas
  std::uint64_t next_rid_ = 1;
};

}  // namespace shoal::daemon
