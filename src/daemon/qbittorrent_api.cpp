// qBittorrent Web API v2. Torrent objects are built on the network thread in one
// session::call per request; field names, types and units follow qbittorrent-nox 4.5.
#include "daemon/qbittorrent_api.hpp"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "core/hash.hpp"
#include "core/magnet.hpp"
#include "core/text.hpp"
#include "daemon/daemon.hpp"
#include "daemon/qbittorrent_detail.hpp"
#include "daemon/rpc_codec.hpp"
#include "daemon/transmission_rpc.hpp"
#include "session/peer_connection.hpp"
#include "storage/file_storage.hpp"
#include "storage/resume.hpp"

namespace shoal::daemon {

namespace json = boost::json;
using namespace qb;

qbittorrent_api::qbittorrent_api(daemon& d) : d_(d) {}

void qbittorrent_api::load_categories() {
  if (!categories_.empty()) return;
  boost::system::error_code ec;
  auto v = json::parse(read_whole_file(d_.state_dir() / "categories.json"), ec);
  if (ec || !v.is_object()) return;
  for (const auto& [k, x] : v.as_object())
    if (x.is_string()) categories_[std::string(k)] = std::string(x.as_string());
}

void qbittorrent_api::save_categories() const {
  json::object o;
  for (const auto& [k, v] : categories_)
    o[k] = v;
  (void)write_file_atomically(d_.state_dir() / "categories.json", json::serialize(o) + "\n");
}

json::object qbittorrent_api::categories_json() const {
  json::object o;
  for (const auto& [k, v] : categories_)
    o[k] = json::object{{"name", k}, {"savePath", v}};
  return o;
}

json::array qbittorrent_api::tags_json() {
  std::set<std::string> all;
  for (const auto& [t, _] : tags_)
    all.insert(t);
  for (const auto& st : d_.ses().status_all())
    for (const auto& l : st.labels)
      if (!categories_.count(l)) all.insert(l);
  json::array a;
  for (const auto& t : all)
    a.emplace_back(t);
  return a;
}

bool qbittorrent_api::authorized(const request& req, const tcp::endpoint& peer) {
  if (!d_.has_password()) return true;  // loopback only, as qBittorrent's localhost bypass
  // The web UI's own calls: the browser sends the Basic credentials it logged in to the page
  // with. Taken only with an Origin or Referer (which handle matched to the Host), so a
  // cross-site request that hides both gets nothing from the browser's stored password.
  if (auto a = req.find(http::field::authorization);
      a != req.end() && (req.find(http::field::origin) != req.end() || req.find(http::field::referer) != req.end())) {
    std::string_view v(a->value());
    std::chrono::seconds wait{};
    if (v.substr(0, 6) != "Basic " || d_.login_blocked(peer.address(), wait)) return false;
    auto dec = base64_decode(v.substr(6));
    const auto colon = dec ? dec->find(':') : std::string::npos;
    if (colon != std::string::npos && d_.check_password(dec->substr(0, colon), dec->substr(colon + 1))) {
      d_.login_ok(peer.address());
      return true;
    }
    d_.login_failed(peer.address());
    return false;
  }
  auto c = req.find(http::field::cookie);
  if (c == req.end()) return false;
  auto sid = cookie_value(std::string_view(c->value()), "SID");
  if (!sid) return false;
  auto it = sids_.find(*sid);
  const auto now = std::chrono::steady_clock::now();
  if (it == sids_.end() || it->second < now) return false;
  it->second = now + std::chrono::hours(1);  // sliding expiry, as the web UI's session timeout
  return true;
}

response qbittorrent_api::login(const request& req, const form& f, const tcp::endpoint& peer) {
  const auto addr = peer.address();
  std::chrono::seconds wait{};
  if (d_.login_blocked(addr, wait)) {
    return text(req, http::status::forbidden,
                "Your IP address has been banned after too many failed authentication attempts.");
  }
  auto user = f.count("username") ? f.at("username") : std::string();
  auto pass = f.count("password") ? f.at("password") : std::string();
  if (d_.has_password() && !d_.check_password(user, pass)) {
    d_.login_failed(addr);
    return text(req, http::status::ok, "Fails.");
  }
  d_.login_ok(addr);
  std::string sid(32, 'x');
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (auto& ch : sid)
    ch = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(sids_, [&](const auto& kv) { return kv.second < now; });
  if (sids_.size() >= 256) sids_.erase(sids_.begin());  // bounded: the oldest name goes
  sids_[sid] = now + std::chrono::hours(1);
  auto r = text(req, http::status::ok, "Ok.");
  r.set(http::field::set_cookie, "SID=" + sid + "; HttpOnly; path=/; SameSite=Strict");
  return r;
}

json::object qbittorrent_api::torrent_map() {
  auto& ses = d_.ses();
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const auto cats = categories_;
  return ses.call([&] {
    json::object all;
    for (const auto& h : ses.torrents()) {
      auto t = ses.find(h.id());
      if (!t) continue;
      const auto st = t->status();
      const bool meta = t->has_metadata();
      const std::uint64_t left = st.total_wanted > st.have_wanted ? st.total_wanted - st.have_wanted : 0;
      std::string category, tags;
      for (const auto& l : st.labels) {
        if (category.empty() && cats.count(l)) {
          category = l;
        } else {
          tags += (tags.empty() ? "" : ", ") + l;
        }
      }
      const bool running = st.state == torrent_state::downloading || st.state == torrent_state::seeding;
      json::object o;
      o["added_on"] = st.added_time;
      o["amount_left"] = left;
      o["auto_tmm"] = false;
      o["availability"] = st.seeds > 0 ? 1.0 : (st.peers > 0 ? 0.5 : 0.0);
      o["category"] = category;
      o["completed"] = st.have_wanted;
      o["completion_on"] = st.completed_time;
      const fs::path content = fs::path(st.save_path) / st.name;
      o["content_path"] = content.string();
      o["dl_limit"] = st.max_download_rate;
      o["dlspeed"] = static_cast<std::int64_t>(st.download_rate);
      o["download_path"] = "";
      o["downloaded"] = st.total_downloaded;
      o["downloaded_session"] = st.downloaded;
      o["eta"] = st.state == torrent_state::downloading && st.download_rate >= 1
                     ? static_cast<std::int64_t>(static_cast<double>(left) / st.download_rate)
                     : eta_unknown;
      o["f_l_piece_prio"] = false;
      o["force_start"] = false;
      const auto hash = to_hex(as_view(st.info_hash));
      o["hash"] = hash;
      o["infohash_v1"] = meta && t->info().info_hash_v1 ? hash : std::string(meta ? "" : hash.c_str());
      o["infohash_v2"] = meta && t->info().info_hash_v2 ? to_hex(as_view(*t->info().info_hash_v2)) : std::string();
      o["last_activity"] = running ? now : st.added_time;
      o["magnet_uri"] = meta ? to_uri(magnet_from(t->info())) : "magnet:?xt=urn:btih:" + hash;
      o["max_ratio"] = st.goals.ratio ? *st.goals.ratio : -1.0;
      o["max_seeding_time"] = st.goals.seeding_time ? st.goals.seeding_time->count() / 60 : -1;
      o["name"] = st.name;
      o["num_complete"] = 0;
      o["num_incomplete"] = 0;
      o["num_leechs"] = st.peers - std::min(st.peers, st.seeds);
      o["num_seeds"] = st.seeds;
      o["priority"] = st.queue_position + 1;
      o["progress"] =
          st.total_wanted ? static_cast<double>(st.have_wanted) / static_cast<double>(st.total_wanted) : 0.0;
      const auto denom = st.total_downloaded ? st.total_downloaded : st.have_wanted;
      o["ratio"] = denom ? static_cast<double>(st.total_uploaded) / static_cast<double>(denom) : 0.0;
      o["ratio_limit"] = st.goals.ratio ? *st.goals.ratio : -2.0;
      o["save_path"] = st.save_path;
      o["seeding_time"] = st.seeding_seconds;
      o["seeding_time_limit"] = st.goals.seeding_time ? st.goals.seeding_time->count() / 60 : -2;
      o["seen_complete"] = st.completed_time;
      o["seq_dl"] = st.sequential;
      o["size"] = st.total_wanted;
      o["state"] = qb_state(st);
      o["super_seeding"] = false;
      o["tags"] = tags;
      o["time_active"] = st.active_seconds;
      o["total_size"] = st.total_size;
      o["tracker"] = st.trackers.empty() || st.tracker_message.empty() ? "" : st.trackers.front();
      o["trackers_count"] = st.trackers.size();
      o["up_limit"] = st.max_upload_rate;
      o["uploaded"] = st.total_uploaded;
      o["uploaded_session"] = st.uploaded;
      o["upspeed"] = static_cast<std::int64_t>(st.upload_rate);
      all[hash] = std::move(o);
    }
    return all;
  });
}

json::array qbittorrent_api::torrents_info(const form& f) {
  auto get = [&](const char* k) { return f.count(k) ? f.at(k) : std::string(); };
  const auto filter = get("filter");
  const auto category = f.count("category") ? std::optional(f.at("category")) : std::nullopt;
  const auto tag = f.count("tag") ? std::optional(f.at("tag")) : std::nullopt;
  std::set<std::string> hashes;
  if (f.count("hashes"))
    for (auto& x : split(f.at("hashes"), '|')) {
      std::transform(x.begin(), x.end(), x.begin(), [](unsigned char c) { return std::tolower(c); });
      hashes.insert(x);
    }
  std::vector<json::object> rows;
  for (auto& [h, v] : torrent_map()) {
    auto& o = v.as_object();
    const std::string state(o["state"].as_string());
    const bool done = o["progress"].to_number<double>() >= 1.0;
    const bool paused = state.rfind("paused", 0) == 0;
    const bool active = o["dlspeed"].to_number<double>() > 0 || o["upspeed"].to_number<double>() > 0;
    bool keep = true;
    if (filter == "downloading") keep = !done && !paused;
    if (filter == "seeding") keep = done && !paused;
    if (filter == "completed") keep = done;
    if (filter == "paused" || filter == "stopped") keep = paused;
    if (filter == "resumed" || filter == "running") keep = !paused;
    if (filter == "active") keep = active;
    if (filter == "inactive") keep = !active;
    if (filter == "stalled") keep = state == "stalledUP" || state == "stalledDL";
    if (filter == "stalled_uploading") keep = state == "stalledUP";
    if (filter == "stalled_downloading") keep = state == "stalledDL";
    if (filter == "errored") keep = state == "error";
    if (category && std::string(o["category"].as_string()) != *category) keep = false;
    if (tag) {
      auto t = split(std::string(o["tags"].as_string()), ',');
      if (tag->empty() ? !t.empty() : std::find(t.begin(), t.end(), *tag) == t.end()) keep = false;
    }
    if (!hashes.empty() && !hashes.count("all") && !hashes.count(std::string(h))) keep = false;
    if (keep) rows.push_back(std::move(o));
  }
  if (auto sort = get("sort"); !sort.empty()) {
    std::stable_sort(rows.begin(), rows.end(), [&](const json::object& a, const json::object& b) {
      const auto* x = a.if_contains(sort);
      const auto* y = b.if_contains(sort);
      if (!x || !y) return false;
      if (x->is_string() && y->is_string()) return x->as_string() < y->as_string();
      if (x->is_number() && y->is_number()) return x->to_number<double>() < y->to_number<double>();
      if (x->is_bool() && y->is_bool()) return x->as_bool() < y->as_bool();
      return false;
    });
  }
  if (truthy(get("reverse"))) std::reverse(rows.begin(), rows.end());
  std::int64_t offset = 0, limit = -1;
  try {
    if (!get("offset").empty()) offset = std::stoll(get("offset"));
    if (!get("limit").empty()) limit = std::stoll(get("limit"));
  } catch (const std::exception&) {
  }
  if (offset < 0) offset = std::max<std::int64_t>(0, static_cast<std::int64_t>(rows.size()) + offset);
  json::array out;
  for (std::size_t i = static_cast<std::size_t>(offset); i < rows.size(); ++i) {
    if (limit >= 0 && static_cast<std::int64_t>(out.size()) >= limit) break;
    out.emplace_back(std::move(rows[i]));
  }
  return out;
}

json::object qbittorrent_api::server_state() {
  auto all = d_.ses().status_all();
  std::uint64_t dl = 0, ul = 0, ds = 0, us = 0, peers = 0, wasted = 0;
  for (const auto& st : all) {
    dl += st.downloaded;
    ul += st.uploaded;
    ds += static_cast<std::uint64_t>(st.download_rate);
    us += static_cast<std::uint64_t>(st.upload_rate);
    peers += st.peers;
    wasted += st.wasted;
  }
  const auto c = d_.config();
  const auto tot = d_.cumulative();
  std::size_t nodes = 0;
  if (auto& node = d_.ses().dht_node()) {
    auto s = d_.ses().call([&] { return node->stats(); });
    nodes = s.nodes + s.nodes6;
  }
  std::error_code ec;
  auto space = fs::space(c.download_dir, ec);
  json::object o;
  o["alltime_dl"] = tot.downloaded + dl;
  o["alltime_ul"] = tot.uploaded + ul;
  o["average_time_queue"] = 0;
  o["connection_status"] = d_.ses().port() ? (peers ? "connected" : "firewalled") : "disconnected";
  o["dht_nodes"] = nodes;
  o["dl_info_data"] = dl;
  o["dl_info_speed"] = ds;
  o["dl_rate_limit"] = c.alt_speed_enabled ? c.alt_speed_down : c.speed_limit_down_enabled ? c.speed_limit_down : 0;
  o["free_space_on_disk"] = ec ? 0 : static_cast<std::int64_t>(space.available);
  const auto denom = tot.downloaded + dl;
  o["global_ratio"] = denom ? fmt_ratio(static_cast<double>(tot.uploaded + ul) / static_cast<double>(denom)) : "-";
  o["queued_io_jobs"] = d_.ses().disk_pool().queued();
  o["queueing"] = c.download_queue_enabled || c.seed_queue_enabled;
  o["read_cache_hits"] = "0";
  o["read_cache_overload"] = "0";
  o["refresh_interval"] = 1500;
  o["total_buffers_size"] = 0;
  o["total_peer_connections"] = peers;
  o["total_queued_size"] = 0;
  o["total_wasted_session"] = wasted;
  o["up_info_data"] = ul;
  o["up_info_speed"] = us;
  o["up_rate_limit"] = c.alt_speed_enabled ? c.alt_speed_up : c.speed_limit_up_enabled ? c.speed_limit_up : 0;
  o["use_alt_speed_limits"] = c.alt_speed_enabled;
  o["write_cache_overload"] = "0";
  return o;
}

json::object qbittorrent_api::preferences() {
  const auto c = d_.config();
  auto kib = [](std::uint64_t bps, bool on) { return on ? static_cast<std::int64_t>(bps / 1024) : 0; };
  json::object o;
  o["save_path"] = c.download_dir.string();
  o["temp_path_enabled"] = c.incomplete_dir_enabled;
  o["temp_path"] = c.incomplete_dir.string();
  o["scan_dirs"] = json::object();
  if (c.watch_dir_enabled && !c.watch_dir.empty()) o["scan_dirs"].as_object()[c.watch_dir.string()] = 1;
  o["start_paused_enabled"] = !c.start_added_torrents;
  o["dl_limit"] = kib(c.speed_limit_down, c.speed_limit_down_enabled);
  o["up_limit"] = kib(c.speed_limit_up, c.speed_limit_up_enabled);
  o["alt_dl_limit"] = static_cast<std::int64_t>(c.alt_speed_down / 1024);
  o["alt_up_limit"] = static_cast<std::int64_t>(c.alt_speed_up / 1024);
  o["scheduler_enabled"] = c.alt_speed_time_enabled;
  o["schedule_from_hour"] = c.alt_speed_time_begin / 60;
  o["schedule_from_min"] = c.alt_speed_time_begin % 60;
  o["schedule_to_hour"] = c.alt_speed_time_end / 60;
  o["schedule_to_min"] = c.alt_speed_time_end % 60;
  o["scheduler_days"] = 0;
  o["queueing_enabled"] = c.download_queue_enabled;
  o["max_active_downloads"] = c.download_queue_enabled ? static_cast<std::int64_t>(c.download_queue_size) : -1;
  o["max_active_uploads"] = c.seed_queue_enabled ? static_cast<std::int64_t>(c.seed_queue_size) : -1;
  o["max_active_torrents"] = -1;
  o["max_ratio_enabled"] = c.seed_ratio_limited;
  o["max_ratio"] = c.seed_ratio_limit;
  o["max_ratio_act"] = 0;  // pause
  o["max_seeding_time_enabled"] = false;
  o["max_seeding_time"] = -1;
  o["listen_port"] = d_.ses().port();
  o["random_port"] = false;
  o["upnp"] = c.port_mapping;
  o["dht"] = c.dht;
  o["pex"] = c.pex;
  o["lsd"] = c.lsd;
  o["encryption"] = c.encryption == "required" ? 1 : c.encryption == "preferred" ? 0 : 2;
  o["max_connec"] = c.peer_limit_global;
  o["max_connec_per_torrent"] = c.peer_limit_per_torrent;
  o["autorun_enabled"] = c.script_torrent_done_enabled;
  o["autorun_program"] = c.script_torrent_done_filename;
  o["web_ui_address"] = c.rpc_bind;
  o["web_ui_port"] = d_.rpc_port();
  o["web_ui_username"] = c.rpc_username;
  o["bypass_local_auth"] = !d_.has_password();
  o["web_ui_host_header_validation_enabled"] = true;
  o["web_ui_csrf_protection_enabled"] = true;
  o["web_ui_max_auth_fail_count"] = 3;
  o["web_ui_session_timeout"] = 3600;
  o["use_https"] = false;
  o["locale"] = "en";
  o["add_trackers_enabled"] = false;
  o["add_trackers"] = "";
  return o;
}

void qbittorrent_api::set_preferences(const json::object& p) {
  auto c = d_.config();
  auto num = [&](const char* k) -> std::optional<double> {
    auto* v = p.if_contains(k);
    if (!v || !v->is_number() || !std::isfinite(v->to_number<double>())) return std::nullopt;
    return v->to_number<double>();
  };
  auto flag = [&](const char* k, bool& dst) {
    if (auto* v = p.if_contains(k); v && v->is_bool()) dst = v->as_bool();
  };
  auto str = [&](const char* k) -> std::optional<std::string> {
    auto* v = p.if_contains(k);
    if (!v || !v->is_string()) return std::nullopt;
    return std::string(v->as_string());
  };
  auto kib_limit = [&](const char* k, std::uint64_t& bps, bool& on) {
    if (auto v = num(k)) {
      on = *v > 0;
      if (*v > 0) bps = static_cast<std::uint64_t>(std::min(*v, 1e12)) * 1024;
    }
  };
  if (auto s = str("save_path"); s && fs::path(*s).is_absolute() && d_.path_allowed(fs::path(*s).lexically_normal()))
    c.download_dir = fs::path(*s).lexically_normal();
  if (auto s = str("temp_path"); s && fs::path(*s).is_absolute() && d_.path_allowed(fs::path(*s).lexically_normal()))
    c.incomplete_dir = fs::path(*s).lexically_normal();
  flag("temp_path_enabled", c.incomplete_dir_enabled);
  if (auto* v = p.if_contains("start_paused_enabled"); v && v->is_bool()) c.start_added_torrents = !v->as_bool();
  kib_limit("dl_limit", c.speed_limit_down, c.speed_limit_down_enabled);
  kib_limit("up_limit", c.speed_limit_up, c.speed_limit_up_enabled);
  if (auto v = num("alt_dl_limit"); v && *v >= 0)
    c.alt_speed_down = static_cast<std::uint64_t>(std::min(*v, 1e12)) * 1024;
  if (auto v = num("alt_up_limit"); v && *v >= 0)
    c.alt_speed_up = static_cast<std::uint64_t>(std::min(*v, 1e12)) * 1024;
  flag("scheduler_enabled", c.alt_speed_time_enabled);
  auto minute = [&](const char* h, const char* m, std::uint32_t& dst) {
    auto hv = num(h), mv = num(m);
    if (hv || mv) {
      const auto hh = static_cast<std::uint32_t>(std::clamp(hv.value_or(dst / 60), 0.0, 23.0));
      const auto mm = static_cast<std::uint32_t>(std::clamp(mv.value_or(dst % 60), 0.0, 59.0));
      dst = hh * 60 + mm;
    }
  };
  minute("schedule_from_hour", "schedule_from_min", c.alt_speed_time_begin);
  minute("schedule_to_hour", "schedule_to_min", c.alt_speed_time_end);
  flag("queueing_enabled", c.download_queue_enabled);
  if (auto* v = p.if_contains("queueing_enabled"); v && v->is_bool()) c.seed_queue_enabled = v->as_bool();
  if (auto v = num("max_active_downloads"); v && *v >= 0)
    c.download_queue_size = static_cast<std::uint32_t>(std::min(*v, 1e6));
  if (auto v = num("max_active_uploads"); v && *v >= 0)
    c.seed_queue_size = static_cast<std::uint32_t>(std::min(*v, 1e6));
  flag("max_ratio_enabled", c.seed_ratio_limited);
  if (auto v = num("max_ratio"); v && *v >= 0) c.seed_ratio_limit = *v;
  flag("upnp", c.port_mapping);
  flag("dht", c.dht);
  flag("pex", c.pex);
  flag("lsd", c.lsd);
  if (auto v = num("max_connec"); v && *v > 0) c.peer_limit_global = static_cast<std::uint32_t>(std::min(*v, 1e6));
  if (auto v = num("max_connec_per_torrent"); v && *v > 0)
    c.peer_limit_per_torrent = static_cast<std::uint32_t>(std::min(*v, 1e6));
  flag("autorun_enabled", c.script_torrent_done_enabled);
  // autorun_program is never taken from the API: which program runs is the server's choice.
  d_.set_config(c);
}

response qbittorrent_api::sync_maindata(const request& req, const form& f) {
  snapshot now;
  now.torrents = torrent_map();
  now.server_state = server_state();
  now.categories = categories_json();
  now.tags = tags_json();
  now.rid = next_rid_++;
  std::uint64_t rid = 0;
  try {
    if (f.count("rid")) rid = std::stoull(f.at("rid"));
  } catch (const std::exception&) {
  }
  const snapshot* base = nullptr;
  for (const auto& s : snapshots_)
    if (s.rid == rid) base = &s;
  json::object out;
  out["rid"] = now.rid;
  if (!base) {
    out["full_update"] = true;
    out["torrents"] = now.torrents;
    out["categories"] = now.categories;
    out["tags"] = now.tags;
    out["server_state"] = now.server_state;
    out["trackers"] = json::object();
  } else {
    // Only what changed: new torrents whole, others by their changed fields.
    json::object torrents;
    for (const auto& [h, v] : now.torrents) {
      auto* old = base->torrents.if_contains(h);
      if (!old) {
        torrents[h] = v;
        continue;
      }
      json::object changed;
      for (const auto& [k, x] : v.as_object()) {
        auto* y = old->as_object().if_contains(k);
        if (!y || *y != x) changed[k] = x;
      }
      if (!changed.empty()) torrents[h] = std::move(changed);
    }
    if (!torrents.empty()) out["torrents"] = std::move(torrents);
    json::array removed;
    for (const auto& [h, v] : base->torrents)
      if (!now.torrents.contains(h)) removed.emplace_back(h);
    if (!removed.empty()) out["torrents_removed"] = std::move(removed);
    json::object cats;
    for (const auto& [k, v] : now.categories)
      if (!base->categories.contains(k) || base->categories.at(k) != v) cats[k] = v;
    if (!cats.empty()) out["categories"] = std::move(cats);
    json::array cats_removed;
    for (const auto& [k, v] : base->categories)
      if (!now.categories.contains(k)) cats_removed.emplace_back(k);
    if (!cats_removed.empty()) out["categories_removed"] = std::move(cats_removed);
    json::array tags, tags_removed;
    for (const auto& t : now.tags)
      if (std::find(base->tags.begin(), base->tags.end(), t) == base->tags.end()) tags.emplace_back(t);
    for (const auto& t : base->tags)
      if (std::find(now.tags.begin(), now.tags.end(), t) == now.tags.end()) tags_removed.emplace_back(t);
    if (!tags.empty()) out["tags"] = std::move(tags);
    if (!tags_removed.empty()) out["tags_removed"] = std::move(tags_removed);
    json::object ss;
    for (const auto& [k, v] : now.server_state)
      if (!base->server_state.contains(k) || base->server_state.at(k) != v) ss[k] = v;
    if (!ss.empty()) out["server_state"] = std::move(ss);
  }
  snapshots_.push_back(std::move(now));
  while (snapshots_.size() > 16)
    snapshots_.pop_front();  // bounded: older rids get a full update
  return json_reply(req, out);
}

response qbittorrent_api::torrents_add(const request& req, const form& f) {
  std::vector<std::string> links, files;
  form fields = f;
  if (auto ct = req.find(http::field::content_type); ct != req.end()) {
    if (auto b = multipart_boundary(std::string_view(ct->value()))) {
      auto parts = parse_multipart(req.body(), *b);
      if (!parts) return text(req, http::status::bad_request, "malformed multipart body");
      for (auto& p : *parts) {
        if (p.name == "torrents") {
          files.push_back(std::move(p.data));
        } else {
          fields[p.name] = std::move(p.data);
        }
      }
    }
  }
  if (fields.count("urls")) links = split(fields.at("urls"), '\n');
  if (links.empty() && files.empty()) return text(req, http::status::ok, "Fails.");
  auto get = [&](const char* k) { return fields.count(k) ? fields.at(k) : std::string(); };
  std::vector<std::string> labels;
  const auto category = get("category");
  std::optional<fs::path> save;
  if (!category.empty()) {
    if (!categories_.count(category)) return text(req, http::status::ok, "Fails.");
    labels.push_back(category);
    if (!categories_.at(category).empty()) save = fs::path(categories_.at(category));
  }
  for (const auto& t : split(get("tags"), ','))
    labels.push_back(t);
  if (auto sp = get("savepath"); !sp.empty()) save = fs::path(sp).lexically_normal();
  if (save && (!save->is_absolute() || !d_.path_allowed(*save))) return text(req, http::status::ok, "Fails.");
  std::optional<bool> paused;
  if (fields.count("paused")) paused = truthy(get("paused"));
  if (fields.count("stopped")) paused = truthy(get("stopped"));
  const bool sequential = truthy(get("sequentialDownload"));
  bool any = false;
  auto add_one = [&](add_request r) {
    r.save_path = save;
    r.paused = paused;
    r.labels = labels;
    auto got = d_.add(std::move(r));
    if (!got) return;
    any = true;
    if (sequential) torrent_handle(&d_.ses(), got->id).set_sequential(true);
  };
  for (auto& bytes : files) {
    add_request r;
    r.metainfo = std::move(bytes);
    add_one(std::move(r));
  }
  for (const auto& l : links) {
    add_request r;
    if (l.rfind("magnet:", 0) == 0) {
      r.magnet = l;
    } else if (l.size() == 40 && from_hex(l)) {
      r.magnet = "magnet:?xt=urn:btih:" + l;  // a bare info-hash, as qBittorrent accepts
    } else {
      auto got = d_.fetch_torrent_url(l);
      if (!got) continue;
      r.metainfo = std::move(*got);
    }
    add_one(std::move(r));
  }
  return text(req, any ? http::status::ok : http::status::unsupported_media_type, any ? "Ok." : "Fails.");
}

response qbittorrent_api::handle(const request& req, std::string_view path, const tcp::endpoint& peer) {
  load_categories();
  // CSRF, as qBittorrent checks it: an Origin or Referer must name the host the request
  // was sent to.
  auto host_it = req.find(http::field::host);
  const auto host = host_part(host_it == req.end() ? std::string_view{} : std::string_view(host_it->value()));
  for (auto field : {http::field::origin, http::field::referer}) {
    auto it = req.find(field);
    if (it == req.end()) continue;
    std::string_view v(it->value());
    auto scheme = v.find("://");
    auto rest = scheme == std::string_view::npos ? v : v.substr(scheme + 3);
    if (host_part(rest.substr(0, rest.find('/'))) != host) return text(req, http::status::unauthorized, "Unauthorized");
  }
  std::string_view target(req.target().data(), req.target().size());
  form f;
  if (auto q = target.find('?'); q != std::string_view::npos) f = parse_form(target.substr(q + 1));
  if (req.method() == http::verb::post) {
    auto ct = req.find(http::field::content_type);
    if (ct == req.end() || std::string_view(ct->value()).find("multipart/") == std::string_view::npos) {
      for (auto& [k, v] : parse_form(req.body()))
        f[k] = v;
    }
  }
  if (path == "auth/login") return login(req, f, peer);
  if (!authorized(req, peer)) return text(req, http::status::forbidden, "Forbidden");
  auto get = [&](const char* k) { return f.count(k) ? f.at(k) : std::string(); };
  auto& ses = d_.ses();

  if (path == "auth/logout") {
    if (auto c = req.find(http::field::cookie); c != req.end())
      if (auto sid = cookie_value(std::string_view(c->value()), "SID")) sids_.erase(*sid);
    return ok(req);
  }
  if (path == "app/version") return text(req, http::status::ok, "v4.5.2");
  if (path == "app/webapiVersion") return text(req, http::status::ok, "2.8.19");
  if (path == "app/buildInfo") {
    return json_reply(req, json::object{{"qt", ""},
                                        {"libtorrent", "shoal 0.1.0"},
                                        {"boost", "1.81"},
                                        {"openssl", ""},
                                        {"zlib", ""},
                                        {"bitness", 64}});
  }
  if (path == "app/defaultSavePath") return text(req, http::status::ok, d_.config().download_dir.string());
  if (path == "app/preferences") return json_reply(req, preferences());
  if (path == "app/setPreferences") {
    boost::system::error_code ec;
    auto v = json::parse(get("json"), ec);
    if (ec || !v.is_object()) return text(req, http::status::bad_request, "json must be an object");
    set_preferences(v.as_object());
    return ok(req);
  }
  if (path == "transfer/info") {
    auto s = server_state();
    json::object o;
    for (const char* k : {"connection_status", "dht_nodes", "dl_info_data", "dl_info_speed", "dl_rate_limit",
                          "up_info_data", "up_info_speed", "up_rate_limit"})
      o[k] = s[k];
    return json_reply(req, o);
  }
  if (path == "sync/maindata") return sync_maindata(req, f);
  if (path == "torrents/info") return json_reply(req, torrents_info(f));
  if (path == "torrents/add") {
    if (req.method() != http::verb::post) return text(req, http::status::method_not_allowed, "POST");
    return torrents_add(req, f);
  }
  if (path == "torrents/categories") return json_reply(req, categories_json());
  if (path == "torrents/createCategory" || path == "torrents/editCategory") {
    const auto name = get("category");
    const auto sp = get("savePath");
    if (name.empty() || name.find('\n') != std::string::npos || name.size() > 255)
      return text(req, http::status::bad_request, "invalid category name");
    if (!sp.empty() && (!fs::path(sp).is_absolute() || !d_.path_allowed(fs::path(sp).lexically_normal())))
      return text(req, http::status::bad_request, "savePath is outside the allowed folders");
    if (path == "torrents/createCategory" && categories_.count(name))
      return text(req, http::status::conflict, "category already exists");
    if (path == "torrents/editCategory" && !categories_.count(name))
      return text(req, http::status::conflict, "no such category");
    if (categories_.size() >= 1000 && !categories_.count(name))
      return text(req, http::status::conflict, "too many categories");
    categories_[name] = sp.empty() ? "" : fs::path(sp).lexically_normal().string();
    save_categories();
    return ok(req);
  }
  if (path == "torrents/removeCategories") {
    auto names = split(get("categories"), '\n');
    for (const auto& n : names)
      categories_.erase(n);
    save_categories();
    for (const auto& st : ses.status_all()) {
      auto labels = st.labels;
      auto keep =
          std::erase_if(labels, [&](const auto& l) { return std::find(names.begin(), names.end(), l) != names.end(); });
      if (keep) torrent_handle(&ses, st.id).set_labels(labels);
    }
    return ok(req);
  }
  if (path == "torrents/tags") return json_reply(req, tags_json());
  if (path == "torrents/createTags") {
    for (const auto& t : split(get("tags"), ','))
      if (tags_.size() < 10000) tags_[t] = true;
    return ok(req);
  }
  if (path == "torrents/deleteTags") {
    auto names = split(get("tags"), ',');
    for (const auto& t : names)
      tags_.erase(t);
    for (const auto& st : ses.status_all()) {
      auto labels = st.labels;
      if (std::erase_if(labels, [&](const auto& l) {
            return !categories_.count(l) && std::find(names.begin(), names.end(), l) != names.end();
          }))
        torrent_handle(&ses, st.id).set_labels(labels);
    }
    return ok(req);
  }

  if (path.rfind("rss/", 0) == 0) return rss_call(req, path.substr(4), f);
  return torrents_call(req, path, f);
}

}  // namespace shoal::daemon
