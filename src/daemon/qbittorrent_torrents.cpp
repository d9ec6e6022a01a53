// qBittorrent Web API v2: the calls on torrents named by "hashes" (a|b|c or all) or
// "hash": properties, files, trackers, and the actions (pause, resume, recheck, delete,
// location, priorities, categories, tags, queue, limits).
#include <algorithm>
#include <cmath>
#include <ctime>

#include "core/hash.hpp"
#include "core/text.hpp"
#include "daemon/daemon.hpp"
#include "daemon/qbittorrent_api.hpp"
#include "daemon/qbittorrent_detail.hpp"
#include "daemon/rpc_codec.hpp"
#include "daemon/transmission_rpc.hpp"
#include "session/peer_connection.hpp"
#include "storage/file_storage.hpp"

namespace shoal::daemon {

using namespace qb;

response qbittorrent_api::torrents_call(const request& req, std::string_view path, const form& f) {
  auto get = [&](const char* k) { return f.count(k) ? f.at(k) : std::string(); };
  auto& ses = d_.ses();

  // Only "all" costs a status of every torrent; named hashes are looked up.
  std::vector<torrent_status> picked;
  {
    auto want = split(get("hashes").empty() ? get("hash") : get("hashes"), '|');
    for (auto& x : want)
      std::transform(x.begin(), x.end(), x.begin(), [](unsigned char c) { return std::tolower(c); });
    picked = std::find(want.begin(), want.end(), "all") != want.end() ? ses.status_all()
                                                                      : ses.status_of({}, digests_of(want));
  }
  auto one = [&]() -> const torrent_status* { return picked.size() == 1 ? &picked.front() : nullptr; };

  if (path == "torrents/properties") {
    const auto* st = one();
    if (!st) return text(req, http::status::not_found, "Not Found");
    auto h = to_hex(as_view(st->info_hash));
    auto props = ses.call([&]() -> json::object {
      auto t = ses.find(st->id);
      if (!t) return {};
      const bool meta = t->has_metadata();
      json::object o;
      o["addition_date"] = st->added_time;
      o["comment"] = meta ? t->info().comment : "";
      o["completion_date"] = st->completed_time ? st->completed_time : -1;
      o["created_by"] = meta ? t->info().created_by : "";
      o["creation_date"] = meta ? t->info().creation_date.value_or(-1) : -1;
      o["dl_limit"] = st->max_download_rate ? static_cast<std::int64_t>(st->max_download_rate) : -1;
      o["dl_speed"] = static_cast<std::int64_t>(st->download_rate);
      const auto secs = std::max<std::int64_t>(1, st->active_seconds);
      o["dl_speed_avg"] = static_cast<std::int64_t>(st->total_downloaded) / secs;
      o["download_path"] = "";
      const std::uint64_t left = st->total_wanted > st->have_wanted ? st->total_wanted - st->have_wanted : 0;
      o["eta"] = st->download_rate >= 1 ? static_cast<std::int64_t>(static_cast<double>(left) / st->download_rate)
                                        : eta_unknown;
      o["hash"] = h;
      o["infohash_v1"] = meta && t->info().info_hash_v1 ? h : "";
      o["infohash_v2"] = meta && t->info().info_hash_v2 ? to_hex(as_view(*t->info().info_hash_v2)) : "";
      o["is_private"] = meta && t->info().is_private;
      o["last_seen"] = st->seeds ? static_cast<std::int64_t>(std::time(nullptr)) : -1;
      o["name"] = st->name;
      o["nb_connections"] = st->peers;
      o["nb_connections_limit"] = d_.config().peer_limit_per_torrent;
      o["peers"] = st->peers - std::min(st->peers, st->seeds);
      o["peers_total"] = st->peers - std::min(st->peers, st->seeds);
      o["piece_size"] = meta ? t->info().piece_length : 0;
      o["pieces_have"] = st->pieces_have;
      o["pieces_num"] = st->num_pieces;
      o["reannounce"] = 0;
      o["save_path"] = st->save_path;
      o["seeding_time"] = st->seeding_seconds;
      o["seeds"] = st->seeds;
      o["seeds_total"] = st->seeds;
      const auto denom = st->total_downloaded ? st->total_downloaded : st->have_wanted;
      o["share_ratio"] = denom ? static_cast<double>(st->total_uploaded) / static_cast<double>(denom) : 0.0;
      o["time_elapsed"] = st->active_seconds;
      o["total_downloaded"] = st->total_downloaded;
      o["total_downloaded_session"] = st->downloaded;
      o["total_size"] = st->total_size;
      o["total_uploaded"] = st->total_uploaded;
      o["total_uploaded_session"] = st->uploaded;
      o["total_wasted"] = st->wasted;
      o["up_limit"] = st->max_upload_rate ? static_cast<std::int64_t>(st->max_upload_rate) : -1;
      o["up_speed"] = static_cast<std::int64_t>(st->upload_rate);
      o["up_speed_avg"] = static_cast<std::int64_t>(st->total_uploaded) / secs;
      return o;
    });
    return json_reply(req, props);
  }
  if (path == "torrents/files") {
    const auto* st = one();
    if (!st) return text(req, http::status::not_found, "Not Found");
    auto files = ses.call([&] {
      json::array a;
      auto t = ses.find(st->id);
      if (!t || !t->has_metadata()) return a;
      const auto& prio = t->file_priorities();
      std::int64_t index = 0;
      for (auto f : visible_files(t->info())) {
        const auto& fe = t->info().files[f];
        const auto done = file_bytes_done(*t, f);
        auto [first, last] = t->files().file_pieces(f);
        json::object o;
        o["availability"] = st->seeds > 0 ? 1.0 : 0.0;
        o["index"] = index++;
        o["is_seed"] = fe.size > 0 && done == fe.size;
        const std::string name = t->file_name(f);  // with the torrent's folder, as qBittorrent lists it
        o["name"] = name;
        o["piece_range"] = json::array{first, last > first ? last - 1 : first};
        o["priority"] = qb_file_prio(f < prio.size() ? prio[f] : 4);
        o["progress"] = fe.size ? static_cast<double>(done) / static_cast<double>(fe.size) : 1.0;
        o["size"] = fe.size;
        a.emplace_back(std::move(o));
      }
      return a;
    });
    return json_reply(req, files);
  }
  if (path == "torrents/trackers") {
    const auto* st = one();
    if (!st) return text(req, http::status::not_found, "Not Found");
    auto [priv, states] = ses.call([&] {
      auto t = ses.find(st->id);
      return std::pair{t && t->has_metadata() && t->info().is_private,
                       t ? t->tracker_states() : std::vector<tracker_state>{}};
    });
    json::array a;
    const auto c = d_.config();
    for (auto [name, on] :
         {std::pair{"** [DHT] **", c.dht}, std::pair{"** [PeX] **", c.pex}, std::pair{"** [LSD] **", c.lsd}}) {
      a.emplace_back(json::object{{"msg", priv ? "This torrent is private" : ""},
                                  {"num_downloaded", 0},
                                  {"num_leeches", 0},
                                  {"num_peers", 0},
                                  {"num_seeds", 0},
                                  {"status", priv || !on ? 0 : 2},
                                  {"tier", -1},
                                  {"url", name}});
    }
    // qBittorrent's tracker status: 1 not contacted yet, 2 working, 4 not working; counts
    // are what the tracker last said (-1: not said); num_peers: peers it gave us.
    for (const auto& ts : states) {
      const bool asked = ts.last_announce != 0;
      a.emplace_back(json::object{{"msg", asked && ts.last_ok && ts.last_result == "Success" ? "" : ts.last_result},
                                  {"num_downloaded", ts.downloaded},
                                  {"num_leeches", ts.leechers},
                                  {"num_peers", asked ? static_cast<std::int64_t>(ts.last_peers) : -1},
                                  {"num_seeds", ts.seeders},
                                  {"status", !asked       ? 1
                                             : ts.last_ok ? 2
                                                          : 4},
                                  {"tier", ts.tier},
                                  {"url", ts.url}});
    }
    return json_reply(req, a);
  }
  if (path == "torrents/pause" || path == "torrents/stop") {
    for (const auto& st : picked)
      torrent_handle(&ses, st.id).pause();
    return ok(req);
  }
  if (path == "torrents/resume" || path == "torrents/start") {
    for (const auto& st : picked)
      torrent_handle(&ses, st.id).resume();
    return ok(req);
  }
  if (path == "torrents/recheck") {
    for (const auto& st : picked)
      torrent_handle(&ses, st.id).force_recheck();
    return ok(req);
  }
  if (path == "torrents/reannounce") {
    for (const auto& st : picked)
      torrent_handle(&ses, st.id).reannounce();
    return ok(req);
  }
  if (path == "torrents/delete") {
    const bool files = truthy(get("deleteFiles"));
    for (const auto& st : picked)
      d_.remove(st.id, files);
    return ok(req);
  }
  if (path == "torrents/setLocation") {
    const fs::path to = fs::path(get("location")).lexically_normal();
    if (get("location").empty() || !to.is_absolute()) return text(req, http::status::bad_request, "location is empty");
    if (!d_.path_allowed(to)) return text(req, http::status::forbidden, "location is outside the allowed folders");
    for (const auto& st : picked)
      torrent_handle(&ses, st.id).move_storage(to);
    return ok(req);
  }
  if (path == "torrents/filePrio") {
    const auto* st = one();
    if (!st) return text(req, http::status::not_found, "Not Found");
    int q = 0;
    try {
      q = std::stoi(get("priority"));
    } catch (const std::exception&) {
      return text(req, http::status::bad_request, "priority is not a number");
    }
    if (q != 0 && q != 1 && q != 6 && q != 7)
      return text(req, http::status::bad_request, "priority must be 0, 1, 6 or 7");
    std::vector<std::int64_t> ids;
    try {
      for (const auto& x : split(get("id"), '|'))
        ids.push_back(std::stoll(x));
    } catch (const std::exception&) {
      return text(req, http::status::bad_request, "id is not a number");
    }
    const bool okay = ses.call([&] {
      auto t = ses.find(st->id);
      if (!t || !t->has_metadata()) return false;
      auto vis = visible_files(t->info());
      auto prio = t->file_priorities();
      if (prio.size() != t->info().files.size()) prio.assign(t->info().files.size(), 4);
      for (auto i : ids) {
        if (i < 0 || static_cast<std::size_t>(i) >= vis.size()) return false;
        prio[vis[static_cast<std::size_t>(i)]] = engine_file_prio(q);
      }
      t->set_file_priorities(std::move(prio));
      return true;
    });
    return okay ? ok(req) : text(req, http::status::conflict, "file index out of range or metadata not yet known");
  }
  if (path == "torrents/setCategory") {
    const auto cat = get("category");
    if (!cat.empty() && !categories_.count(cat)) return text(req, http::status::conflict, "no such category");
    for (const auto& st : picked) {
      auto labels = st.labels;
      std::erase_if(labels, [&](const auto& l) { return categories_.count(l) > 0; });
      if (!cat.empty()) labels.insert(labels.begin(), cat);
      torrent_handle(&ses, st.id).set_labels(labels);
    }
    return ok(req);
  }
  if (path == "torrents/addTags" || path == "torrents/removeTags") {
    auto names = split(get("tags"), ',');
    for (const auto& st : picked) {
      auto labels = st.labels;
      for (const auto& n : names) {
        auto it = std::find(labels.begin(), labels.end(), n);
        if (path == "torrents/addTags" && it == labels.end() && labels.size() < 100) labels.push_back(n);
        if (path == "torrents/removeTags" && it != labels.end() && !categories_.count(n)) labels.erase(it);
      }
      torrent_handle(&ses, st.id).set_labels(labels);
    }
    return ok(req);
  }
  if (path == "torrents/topPrio" || path == "torrents/bottomPrio" || path == "torrents/increasePrio" ||
      path == "torrents/decreasePrio") {
    std::vector<torrent_id> ids;
    for (const auto& st : picked)
      ids.push_back(st.id);
    using step = session::queue_step;
    ses.queue_move(ids, path == "torrents/topPrio"        ? step::top
                        : path == "torrents/bottomPrio"   ? step::bottom
                        : path == "torrents/increasePrio" ? step::up
                                                          : step::down);
    return ok(req);
  }
  if (path == "torrents/setShareLimits") {
    double ratio = -2;
    long long minutes = -2;
    try {
      if (!get("ratioLimit").empty()) ratio = std::stod(get("ratioLimit"));
      if (!get("seedingTimeLimit").empty()) minutes = std::stoll(get("seedingTimeLimit"));
    } catch (const std::exception&) {
      return text(req, http::status::bad_request, "limits must be numbers");
    }
    if (!std::isfinite(ratio)) return text(req, http::status::bad_request, "ratioLimit must be finite");
    const auto c = d_.config();
    for (const auto& st : picked) {
      auto g = st.goals;
      if (ratio == -2) {
        g.ratio = c.seed_ratio_limited ? std::optional(c.seed_ratio_limit) : std::nullopt;
      } else if (ratio < 0) {
        g.ratio.reset();
      } else {
        g.ratio = ratio;
      }
      if (minutes < 0) {
        g.seeding_time.reset();
      } else {
        g.seeding_time = std::chrono::seconds(std::min<long long>(minutes, 1ll << 32) * 60);
      }
      torrent_handle(&ses, st.id).set_goals(g);
    }
    return ok(req);
  }
  if (path == "torrents/setDownloadLimit" || path == "torrents/setUploadLimit") {
    long long limit = 0;
    try {
      limit = std::stoll(get("limit"));
    } catch (const std::exception&) {
      return text(req, http::status::bad_request, "limit is not a number");
    }
    const auto v = limit > 0 ? static_cast<std::uint64_t>(std::min<long long>(limit, 1ll << 40)) : 0;
    for (const auto& st : picked) {
      if (path == "torrents/setDownloadLimit") {
        torrent_handle(&ses, st.id).set_limits(v, st.max_upload_rate);
      } else {
        torrent_handle(&ses, st.id).set_limits(st.max_download_rate, v);
      }
    }
    return ok(req);
  }
  if (path == "torrents/toggleSequentialDownload") {
    for (const auto& st : picked)
      torrent_handle(&ses, st.id).set_sequential(!st.sequential);
    return ok(req);
  }
  if (path == "torrents/renameFile" || path == "torrents/renameFolder") {
    // Paths as torrents/files lists them (with the torrent's folder); 409 when it fails.
    const auto* st = one();
    if (!st) return text(req, http::status::not_found, "Not Found");
    const auto from = get("oldPath"), to = get("newPath");
    if (from.empty() || to.empty()) return text(req, http::status::bad_request, "oldPath and newPath are required");
    auto [ec, why] = torrent_handle(&ses, st->id).rename_path(from, to);
    if (ec) return text(req, http::status::conflict, why);
    return ok(req);
  }
  if (path == "torrents/rename") {
    // The name shown; the files keep theirs (as qBittorrent does).
    const auto* st = one();
    if (!st) return text(req, http::status::not_found, "Not Found");
    const auto name = get("name");
    const bool clean = std::none_of(name.begin(), name.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
    if (name.empty() || name.size() > 1024 || !clean)
      return text(req, http::status::conflict, "Incorrect torrent name");
    torrent_handle(&ses, st->id).set_display_name(name);
    return ok(req);
  }
  return text(req, http::status::not_found, "Not Found");
}

}  // namespace shoal::daemon
