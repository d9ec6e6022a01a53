// Transmission RPC methods. Torrent fields are read on the session's network thread in one
// trip per request (session::call), so a torrent-get of every torrent is one lambda.
#include "daemon/transmission_rpc.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "core/hash.hpp"
#include "core/magnet.hpp"
#include "core/text.hpp"
#include "daemon/daemon.hpp"
#include "daemon/rpc_codec.hpp"
#include "daemon/sync_folders.hpp"
#include "session/peer_connection.hpp"
#include "storage/file_storage.hpp"

namespace shoal::daemon {

namespace json = boost::json;

namespace {

bool selected(const id_selection& sel, const torrent_status& st) {
  if (sel.all) return true;
  if (sel.recent) {
    const bool busy = st.download_rate > 0 || st.upload_rate > 0 || st.state == torrent_state::checking ||
                      st.state == torrent_state::fetching_metadata;
    if (busy) return true;
  }
  if (sel.ids.count(st.id)) return true;
  if (!sel.hashes.empty() && sel.hashes.count(to_hex(as_view(st.info_hash)))) return true;
  return false;
}

std::optional<std::uint64_t> get_u64(const json::object& a, std::string_view k) {
  auto it = a.find(k);
  if (it == a.end()) return std::nullopt;
  // Clamped to 2^40 (limits in kB/s, sizes, counts): larger values mean nothing here, and
  // later arithmetic (kB/s * 1000) stays far from overflow.
  constexpr std::uint64_t cap = 1ull << 40;
  const auto& v = it->value();
  if (v.is_int64() && v.as_int64() >= 0) return std::min<std::uint64_t>(static_cast<std::uint64_t>(v.as_int64()), cap);
  if (v.is_uint64()) return std::min<std::uint64_t>(v.as_uint64(), cap);
  if (v.is_double() && v.as_double() >= 0) return static_cast<std::uint64_t>(std::min(v.as_double(), double(cap)));
  return std::nullopt;
}
std::optional<double> get_double(const json::object& a, std::string_view k) {
  auto it = a.find(k);
  if (it == a.end()) return std::nullopt;
  const auto& v = it->value();
  if (v.is_number() && std::isfinite(v.to_number<double>())) return v.to_number<double>();
  return std::nullopt;
}
std::optional<bool> get_bool(const json::object& a, std::string_view k) {
  auto it = a.find(k);
  if (it == a.end()) return std::nullopt;
  const auto& v = it->value();
  if (v.is_bool()) return v.as_bool();
  if (v.is_int64()) return v.as_int64() != 0;
  return std::nullopt;
}
std::optional<std::string> get_string(const json::object& a, std::string_view k) {
  auto it = a.find(k);
  if (it == a.end() || !it->value().is_string()) return std::nullopt;
  return std::string(it->value().as_string());
}
std::vector<std::int64_t> get_int_list(const json::object& a, std::string_view k) {
  std::vector<std::int64_t> out;
  auto it = a.find(k);
  if (it == a.end()) return out;
  if (it->value().is_array()) {
    for (const auto& e : it->value().as_array())
      if (e.is_int64()) out.push_back(e.as_int64());
  } else if (it->value().is_int64()) {
    out.push_back(it->value().as_int64());
  }
  return out;
}
std::vector<std::string> get_string_list(const json::object& a, std::string_view k) {
  std::vector<std::string> out;
  auto it = a.find(k);
  if (it == a.end() || !it->value().is_array()) return out;
  for (const auto& e : it->value().as_array())
    if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

// Applies files-wanted, files-unwanted and priority-* (indices of visible files) to a
// torrent's engine priorities; false if an index is out of range.
bool apply_file_args(const json::object& args, const metainfo& m, std::vector<std::uint8_t>& prio) {
  auto vis = visible_files(m);
  if (prio.size() != m.files.size()) prio.assign(m.files.size(), prio_normal);
  // Unwanted files keep no priority of their own here: wanting one again makes it normal.
  bool ok = true;
  auto each = [&](std::string_view key, auto fn) {
    for (auto i : get_int_list(args, key)) {
      if (i < 0 || static_cast<std::size_t>(i) >= vis.size()) {
        ok = false;
        continue;
      }
      fn(prio[vis[static_cast<std::size_t>(i)]]);
    }
  };
  auto want = [&](std::uint8_t& p) {
    if (p == 0) p = prio_normal;
  };
  // files-wanted with an empty list (Transmission 3.00's "all") is not sent by clients.
  each("files-wanted", want);
  each("files-unwanted", [](std::uint8_t& p) { p = 0; });
  each("priority-high", [](std::uint8_t& p) {
    if (p != 0) p = prio_high;
  });
  each("priority-normal", [](std::uint8_t& p) {
    if (p != 0) p = prio_normal;
  });
  each("priority-low", [](std::uint8_t& p) {
    if (p != 0) p = prio_low;
  });
  return ok;
}

bool has_file_args(const json::object& a) {
  for (const char* k : {"files-wanted", "files-unwanted", "priority-high", "priority-normal", "priority-low"})
    if (a.contains(k)) return true;
  return false;
}

// shoal's own methods for synced folders (docs/SYNC_API.md): shoal-sync-get lists them
// (never a key), shoal-sync-add adds one (new, existing, or joined with a key),
// shoal-sync-remove stops one (its files stay), shoal-sync-keys reveals one's keys.
json::object sync_method(daemon& d, std::string_view method, const json::object& args, std::string& result) {
  json::object out;
  auto& ses = d.ses();
  auto& folders = d.sync();
  if (method == "shoal-sync-get") {
    auto list = ses.call([&] { return folders.list(); });
    json::array arr;
    for (const auto& f : list) {
      json::object o;
      o["id"] = f.id;
      o["path"] = f.path;
      o["shareId"] = f.share;
      o["access"] = f.access;
      o["deviceId"] = f.device;
      o["state"] = f.state;
      o["error"] = f.error;
      o["files"] = f.files;
      o["directories"] = f.dirs;
      o["bytes"] = f.bytes;
      o["queued"] = f.queued;
      json::array dial;
      for (const auto& p : f.dial)
        dial.emplace_back(p);
      o["dial"] = std::move(dial);
      json::array trackers;
      for (const auto& t : f.trackers)
        trackers.emplace_back(t);
      o["trackers"] = std::move(trackers);
      json::array peers;
      for (const auto& p : f.peers)
        peers.emplace_back(json::object{
            {"device", p.device}, {"address", p.address}, {"access", p.can_write ? "read-write" : "read-only"}});
      o["peers"] = std::move(peers);
      json::array events;
      for (const auto& e : f.events)
        events.emplace_back(json::object{
            {"time", e.time}, {"kind", e.kind}, {"path", e.path}, {"device", e.device}, {"detail", e.detail}});
      o["events"] = std::move(events);
      json::array conflicts;
      for (const auto& c : f.conflicts)
        conflicts.emplace_back(c);
      o["conflicts"] = std::move(conflicts);
      arr.emplace_back(std::move(o));
    }
    out["folders"] = std::move(arr);
    return out;
  }
  if (method == "shoal-sync-add") {
    const auto path = get_string(args, "path").value_or("");
    const fs::path p = fs::path(path).lexically_normal();
    if (path.empty() || !p.is_absolute() || !d.path_allowed(p)) {
      result = "path must be an absolute path inside the allowed folders";
      return out;
    }
    const auto key = get_string(args, "key").value_or("");
    const auto peers = get_string_list(args, "peers");
    const auto trackers = get_string_list(args, "trackers");
    auto added = ses.call([&] { return folders.add(p, key, peers, trackers); });
    if (!added) {
      result = added.err().message();
      return out;
    }
    out["folder"] = json::object{{"id", added->id},
                                 {"path", added->path},
                                 {"shareId", added->share},
                                 {"access", added->access},
                                 {"deviceId", added->device}};
    return out;
  }
  if (method == "shoal-sync-remove" || method == "shoal-sync-keys") {
    const auto id = get_u64(args, "id");
    if (!id || *id == 0 || *id > UINT32_MAX) {
      result = "id: a sync folder's id is needed";
      return out;
    }
    const auto fid = static_cast<std::uint32_t>(*id);
    if (method == "shoal-sync-remove") {
      auto r = ses.call([&] { return folders.remove(fid); });
      if (!r) result = r.err().message();
      return out;
    }
    auto k = ses.call([&] { return folders.keys(fid); });
    if (!k) {
      result = k.err().message();
      return out;
    }
    out["readWrite"] = k->read_write;
    out["readOnly"] = k->read_only;
    return out;
  }
  result = "method name not recognized";
  return out;
}

}  // namespace

json::value transmission_rpc::run(const json::value& request) {
  rpc_call c;
  const bool looks_2 = request.is_object() && request.as_object().contains("jsonrpc");
  if (auto bad = parse_rpc(request, c)) {
    auto id = c.id;
    return rpc_failure(*bad, looks_2, id);
  }
  std::string result = "success";
  // Moved, not assigned: the answer keeps the memory resource call() built it in.
  json::object out = [&] {
    try {
      return call(c.method, c.args, result);
    } catch (const std::exception& e) {
      result = std::string("internal error: ") + e.what();
      return json::object();
    }
  }();
  if (c.notification) return nullptr;
  return rpc_answer(c, result, std::move(out));
}

std::optional<std::string> transmission_rpc::handle(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  const bool looks_2 = body.find("\"jsonrpc\"") != std::string_view::npos;
  if (ec) return json::serialize(rpc_failure({-32700, "request is not JSON: " + ec.message()}, looks_2, nullptr));
  if (v.is_array()) {
    // A JSON-RPC 2.0 batch: the answers in order, notifications left out.
    if (v.as_array().empty()) return json::serialize(rpc_failure({-32600, "an empty batch"}, true, nullptr));
    if (v.as_array().size() > 1000)
      return json::serialize(rpc_failure({-32600, "a batch of over 1000"}, true, nullptr));
    json::array answers;
    for (const auto& r : v.as_array()) {
      auto a = run(r);
      if (!a.is_null()) answers.emplace_back(std::move(a));
    }
    if (answers.empty()) return std::nullopt;
    return json::serialize(answers);
  }
  auto a = run(v);
  if (a.is_null()) return std::nullopt;
  return json::serialize(a);
}

json::object transmission_rpc::call(std::string_view method, const json::object& args, std::string& result) {
  // One answer's tree lives in one monotonic arena: a list of 10,000 torrents is a few
  // large allocations, not one per object, and is let go of at once.
  json::object out(json::make_shared_resource<json::monotonic_resource>());
  auto& ses = d_.ses();
  const auto cfg = d_.config();

  if (method == "session-get") {
    out = config_json(cfg);
    std::error_code sec;
    auto sp = fs::space(cfg.download_dir, sec);
    out["download-dir-free-space"] = sec ? -1 : static_cast<std::int64_t>(sp.available);
    out["rpc-version"] = 16;
    out["rpc-version-minimum"] = 1;
    out["rpc-version-semver"] = "6.0.0";
    out["version"] = "3.00 (shoal 0.1.0)";
    out["session-id"] = d_.session_id();
    out["config-dir"] = cfg.state_dir.string();
    out["peer-port"] = ses.port();
    out["blocklist-enabled"] = false;
    out["blocklist-size"] = 0;
    out["blocklist-url"] = "";
    out["cache-size-mb"] = 4;
    out["queue-stalled-enabled"] = false;
    out["queue-stalled-minutes"] = 30;
    out["rename-partial-files"] = false;
    out["trash-original-torrent-files"] = false;
    out["peer-port-random-on-start"] = false;
    out["utp-enabled"] = ses.settings().transport != peer_transport::tcp;
    json::object units;
    units["memory-bytes"] = 1024;
    units["memory-units"] = json::array{"KiB", "MiB", "GiB", "TiB"};
    units["size-bytes"] = 1000;
    units["size-units"] = json::array{"kB", "MB", "GB", "TB"};
    units["speed-bytes"] = 1000;
    units["speed-units"] = json::array{"kB/s", "MB/s", "GB/s", "TB/s"};
    out["units"] = std::move(units);
    if (auto f = args.find("fields"); f != args.end() && f->value().is_array() && !f->value().as_array().empty()) {
      json::object picked;
      for (const auto& k : f->value().as_array())
        if (k.is_string())
          if (auto it = out.find(k.as_string()); it != out.end()) picked[k.as_string()] = it->value();
      out = std::move(picked);
    }
    return out;
  }

  if (method == "session-set") {
    auto c = cfg;
    if (auto s = get_string(args, "download-dir")) {
      fs::path p = fs::path(*s).lexically_normal();
      if (!p.is_absolute() || !d_.path_allowed(p)) {
        result = "download-dir must be an absolute path inside the allowed folders";
        return out;
      }
      c.download_dir = p;
    }
    auto kbps = [&](std::string_view k, std::uint64_t& dst) {
      if (auto v = get_u64(args, k)) dst = *v * 1000;
    };
    auto flag = [&](std::string_view k, bool& dst) {
      if (auto v = get_bool(args, k)) dst = *v;
    };
    kbps("speed-limit-down", c.speed_limit_down);
    kbps("speed-limit-up", c.speed_limit_up);
    kbps("alt-speed-down", c.alt_speed_down);
    kbps("alt-speed-up", c.alt_speed_up);
    flag("speed-limit-down-enabled", c.speed_limit_down_enabled);
    flag("speed-limit-up-enabled", c.speed_limit_up_enabled);
    flag("alt-speed-enabled", c.alt_speed_enabled);
    flag("download-queue-enabled", c.download_queue_enabled);
    flag("seed-queue-enabled", c.seed_queue_enabled);
    flag("seedRatioLimited", c.seed_ratio_limited);
    flag("idle-seeding-limit-enabled", c.idle_seeding_limit_enabled);
    flag("start-added-torrents", c.start_added_torrents);
    flag("dht-enabled", c.dht);
    flag("lpd-enabled", c.lsd);
    flag("pex-enabled", c.pex);
    flag("port-forwarding-enabled", c.port_mapping);
    flag("incomplete-dir-enabled", c.incomplete_dir_enabled);
    flag("script-torrent-done-enabled", c.script_torrent_done_enabled);
    flag("alt-speed-time-enabled", c.alt_speed_time_enabled);
    if (auto v = get_u64(args, "alt-speed-time-begin")) c.alt_speed_time_begin = static_cast<std::uint32_t>(*v % 1440);
    if (auto v = get_u64(args, "alt-speed-time-end")) c.alt_speed_time_end = static_cast<std::uint32_t>(*v % 1440);
    if (auto v = get_u64(args, "alt-speed-time-day")) c.alt_speed_time_day = static_cast<std::uint32_t>(*v & 127);
    if (auto s = get_string(args, "incomplete-dir")) {
      if (!fs::path(*s).is_absolute() || !d_.path_allowed(fs::path(*s).lexically_normal())) {
        result = "incomplete-dir must be an absolute path inside the allowed folders";
        return out;
      }
      c.incomplete_dir = fs::path(*s).lexically_normal();
    }
    // A program to run is a local decision: over RPC it may only be switched off or on
    // as the settings file names it, never pointed at another program.
    if (auto s = get_string(args, "script-torrent-done-filename"); s && *s != c.script_torrent_done_filename) {
      result = "script-torrent-done-filename can only be set in settings.json on the server";
      return out;
    }
    if (auto v = get_u64(args, "download-queue-size")) c.download_queue_size = static_cast<std::uint32_t>(*v);
    if (auto v = get_u64(args, "seed-queue-size")) c.seed_queue_size = static_cast<std::uint32_t>(*v);
    if (auto v = get_u64(args, "idle-seeding-limit")) c.idle_seeding_limit = static_cast<std::uint32_t>(*v);
    if (auto v = get_u64(args, "peer-limit-global")) c.peer_limit_global = static_cast<std::uint32_t>(*v);
    if (auto v = get_u64(args, "peer-limit-per-torrent")) c.peer_limit_per_torrent = static_cast<std::uint32_t>(*v);
    if (auto v = get_double(args, "seedRatioLimit")) c.seed_ratio_limit = *v;
    if (auto v = get_string(args, "encryption")) {
      if (*v != "required" && *v != "preferred" && *v != "tolerated") {
        result = "encryption must be required, preferred or tolerated";
        return out;
      }
      c.encryption = *v;
    }
    if (auto v = get_u64(args, "peer-port")) {
      if (*v > 65535) {
        result = "peer-port must be 0..65535";
        return out;
      }
      c.peer_port = static_cast<std::uint16_t>(*v);  // used from the next start
    }
    d_.set_config(c);
    return out;
  }

  if (method == "session-stats") {
    auto all = ses.status_all();
    std::uint64_t active = 0, paused = 0, down = 0, up = 0, sdown = 0, sup = 0;
    for (const auto& st : all) {
      if (st.state == torrent_state::paused || st.state == torrent_state::stopped) {
        ++paused;
      } else if (st.state != torrent_state::queued && st.state != torrent_state::error) {
        ++active;
      }
      down += static_cast<std::uint64_t>(st.download_rate);
      up += static_cast<std::uint64_t>(st.upload_rate);
      sdown += st.downloaded;
      sup += st.uploaded;
    }
    out["activeTorrentCount"] = active;
    out["pausedTorrentCount"] = paused;
    out["torrentCount"] = all.size();
    out["downloadSpeed"] = down;
    out["uploadSpeed"] = up;
    const auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - d_.started()).count();
    json::object cur;
    cur["downloadedBytes"] = sdown;
    cur["uploadedBytes"] = sup;
    cur["filesAdded"] = d_.cumulative().files_added;
    cur["secondsActive"] = secs;
    cur["sessionCount"] = 1;
    auto tot = d_.cumulative();
    json::object cum;
    cum["downloadedBytes"] = tot.downloaded + sdown;
    cum["uploadedBytes"] = tot.uploaded + sup;
    cum["filesAdded"] = tot.files_added;
    cum["secondsActive"] = tot.seconds_active + static_cast<std::uint64_t>(secs);
    cum["sessionCount"] = tot.session_count;
    out["current-stats"] = std::move(cur);
    out["cumulative-stats"] = std::move(cum);
    return out;
  }

  if (method == "session-close") {
    close_requested = true;
    return out;
  }

  if (method.rfind("shoal-sync-", 0) == 0) return sync_method(d_, method, args, result);

  if (method == "torrent-add") {
    add_request r;
    if (auto dir = get_string(args, "download-dir")) {
      fs::path p(*dir);
      if (!p.is_absolute()) {
        result = "download-dir must be an absolute path";
        return out;
      }
      r.save_path = p.lexically_normal();
    }
    r.paused = get_bool(args, "paused");
    r.labels = get_string_list(args, "labels");
    if (auto mi = get_string(args, "metainfo")) {
      auto bytes = base64_decode(*mi);
      if (!bytes) {
        result = "metainfo is not base64";
        return out;
      }
      r.metainfo = std::move(*bytes);
    } else if (auto fn = get_string(args, "filename")) {
      auto& s = *fn;
      if (s.rfind("magnet:", 0) == 0) {
        r.magnet = s;
      } else if (s.find("://") != std::string::npos) {
        auto got = d_.fetch_torrent_url(s);
        if (!got) {
          result = got.err().detail;
          return out;
        }
        r.metainfo = std::move(*got);
      } else {
        auto m = load_metainfo(s);
        if (!m) {
          result = "cannot add " + s + ": " + m.err().message();
          return out;
        }
        std::error_code rec;
        std::ifstream in(s, std::ios::binary);
        r.metainfo.assign(std::istreambuf_iterator<char>(in), {});
      }
    } else {
      result = "torrent-add needs \"filename\" or \"metainfo\"";
      return out;
    }
    // File selection needs the file count: applied once the metainfo is parsed.
    if (!r.metainfo.empty() && has_file_args(args)) {
      auto m = parse_metainfo(r.metainfo);
      if (m && !apply_file_args(args, *m, r.file_priorities)) {
        result = "file index out of range";
        return out;
      }
    }
    auto added = d_.add(std::move(r));
    if (!added) {
      result = added.err().detail;
      return out;
    }
    json::object t;
    t["id"] = added->id;
    t["name"] = added->name;
    t["hashString"] = added->hash;
    out[added->duplicate ? "torrent-duplicate" : "torrent-added"] = std::move(t);
    return out;
  }

  auto sel = parse_ids(args);
  if (!sel) {
    result = sel.err().detail;
    return out;
  }

  if (method == "torrent-get") {
    std::vector<std::string> fields;
    if (auto f = args.find("fields"); f != args.end() && f->value().is_array()) {
      for (const auto& e : f->value().as_array())
        if (e.is_string()) fields.emplace_back(e.as_string());
    }
    const bool table = get_string(args, "format").value_or("objects") == "table";
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    // The status's lists and long strings (labels, trackers, folder, tracker message) only
    // when a field asked for needs them: a list of 10,000 names and rates copies none.
    const bool lists = std::any_of(fields.begin(), fields.end(), [](const std::string& f) {
      return f == "labels" || f == "trackers" || f == "trackerStats" || f == "downloadDir" || f == "errorString";
    });
    json::array torrents = ses.call([&]() {
      // Only the torrents asked for: a client polling one id does not pay for 10,000.
      // Raw pointers: the session owns every torrent for the length of this call.
      std::vector<torrent*> pick;
      if (sel->all || sel->recent) {
        pick.reserve(ses.by_id().size());
        for (const auto& [id, t] : ses.by_id())
          pick.push_back(t.get());
      } else {
        for (const auto& t : ses.find_named({sel->ids.begin(), sel->ids.end()}, digests_of(sel->hashes)))
          pick.push_back(t.get());
      }
      json::array arr(out.storage());
      arr.reserve(pick.size() + 1);
      if (table) {
        json::array head(out.storage());
        for (const auto& f : fields)
          head.emplace_back(f);
        arr.emplace_back(std::move(head));
      }
      for (const auto& t : pick) {
        auto st = t->status(lists);
        if (sel->recent && !selected(*sel, st)) continue;
        torrent_view v{*t, st, now};
        if (table) {
          json::array row(out.storage());
          row.reserve(fields.size());
          for (const auto& f : fields)
            row.emplace_back(torrent_field(v, f, cfg));
          arr.emplace_back(std::move(row));
        } else {
          json::object o(fields.size(), out.storage());
          for (const auto& f : fields) {
            auto val = torrent_field(v, f, cfg);
            if (!val.is_null()) o[f] = std::move(val);
          }
          arr.emplace_back(std::move(o));
        }
      }
      return arr;
    });
    out["torrents"] = std::move(torrents);
    if (sel->recent) out["removed"] = json::array();
    return out;
  }

  // The rest act on the selected torrents: by id or hash, only those are looked at.
  std::vector<torrent_id> ids;
  if (sel->all || sel->recent) {
    for (const auto& st : ses.status_all())
      if (selected(*sel, st)) ids.push_back(st.id);
  } else {
    for (const auto& st : ses.status_of({sel->ids.begin(), sel->ids.end()}, digests_of(sel->hashes)))
      ids.push_back(st.id);
  }

  if (method == "torrent-start" || method == "torrent-start-now") {
    for (auto id : ids)
      torrent_handle(&ses, id).resume();
    return out;
  }
  if (method == "torrent-stop") {
    for (auto id : ids)
      torrent_handle(&ses, id).pause();
    return out;
  }
  if (method == "torrent-verify") {
    for (auto id : ids)
      torrent_handle(&ses, id).force_recheck();
    return out;
  }
  if (method == "torrent-reannounce") {
    for (auto id : ids)
      torrent_handle(&ses, id).reannounce();
    return out;
  }
  if (method == "torrent-remove") {
    const bool data = get_bool(args, "delete-local-data").value_or(false);
    for (auto id : ids)
      d_.remove(id, data);
    return out;
  }
  if (method == "torrent-set-location") {
    auto loc = get_string(args, "location");
    if (!loc || !fs::path(*loc).is_absolute()) {
      result = "location must be an absolute path";
      return out;
    }
    const fs::path to = fs::path(*loc).lexically_normal();
    if (!d_.path_allowed(to)) {
      result = to.string() + " is outside the allowed download folders";
      return out;
    }
    // move: false leaves the files where they are; the torrent looks for its data in the
    // new folder and checks it there.
    const bool move = get_bool(args, "move").value_or(false);
    for (auto id : ids)
      torrent_handle(&ses, id).move_storage(to, move);
    return out;
  }
  if (method == "torrent-set") {
    const auto down = get_u64(args, "downloadLimit");
    const auto up = get_u64(args, "uploadLimit");
    const auto down_on = get_bool(args, "downloadLimited");
    const auto up_on = get_bool(args, "uploadLimited");
    const bool files = has_file_args(args);
    const auto labels = args.contains("labels") ? std::optional(get_string_list(args, "labels")) : std::nullopt;
    const auto ratio_mode = get_u64(args, "seedRatioMode");
    const auto ratio = get_double(args, "seedRatioLimit");
    const auto idle_mode = get_u64(args, "seedIdleMode");
    const auto idle = get_u64(args, "seedIdleLimit");
    const auto queue = get_u64(args, "queuePosition");
    const auto sequential = get_bool(args, "sequential_download");
    bool bad_index = false;
    ses.call([&]() {
      for (auto id : ids) {
        auto t = ses.find(id);
        if (!t) continue;
        auto st = t->status();
        if (down || up || down_on || up_on) {
          std::uint64_t d = st.max_download_rate, u = st.max_upload_rate;
          // A limit is kept while off in Transmission; here "off" is 0 (unlimited).
          if (down) d = *down * 1000;
          if (down_on && !*down_on) d = 0;
          if (down_on && *down_on && !down && d == 0) d = 100 * 1000;
          if (up) u = *up * 1000;
          if (up_on && !*up_on) u = 0;
          if (up_on && *up_on && !up && u == 0) u = 100 * 1000;
          if (down && !down_on && st.max_download_rate == 0) d = 0;  // a value alone does not turn it on
          if (up && !up_on && st.max_upload_rate == 0) u = 0;
          t->set_limits(d, u);
        }
        if (files && t->has_metadata()) {
          auto prio = t->file_priorities();
          if (!apply_file_args(args, t->info(), prio)) bad_index = true;
          t->set_file_priorities(std::move(prio));
        }
        if (labels) t->set_labels(*labels);
        if (sequential) t->set_sequential(*sequential);
        if (ratio_mode || ratio || idle_mode || idle) {
          auto g = st.goals;
          const auto rm = ratio_mode.value_or(g.ratio ? 1 : 2);
          if (rm == 0) {
            g.ratio = cfg.seed_ratio_limited ? std::optional(cfg.seed_ratio_limit) : std::nullopt;
          } else if (rm == 1) {
            g.ratio = ratio ? *ratio : g.ratio.value_or(cfg.seed_ratio_limit);
          } else {
            g.ratio.reset();
          }
          const auto im = idle_mode.value_or(g.idle_time ? 1 : 2);
          if (im == 0) {
            g.idle_time = cfg.idle_seeding_limit_enabled
                              ? std::optional(std::chrono::seconds(std::int64_t{cfg.idle_seeding_limit} * 60))
                              : std::nullopt;
          } else if (im == 1) {
            g.idle_time = std::chrono::seconds(
                (idle ? *idle : (g.idle_time ? g.idle_time->count() / 60 : cfg.idle_seeding_limit)) * 60);
          } else {
            g.idle_time.reset();
          }
          t->set_goals(g);
        }
      }
    });
    if (queue && !ids.empty()) ses.queue_move(ids.front(), static_cast<std::uint32_t>(*queue));
    if (bad_index) result = "file index out of range";
    return out;
  }
  if (method == "queue-move-top" || method == "queue-move-bottom" || method == "queue-move-up" ||
      method == "queue-move-down") {
    using step = session::queue_step;
    ses.queue_move(ids, method == "queue-move-top"      ? step::top
                        : method == "queue-move-bottom" ? step::bottom
                        : method == "queue-move-up"     ? step::up
                                                        : step::down);
    return out;
  }
  if (method == "free-space") {
    auto p = get_string(args, "path");
    if (!p) {
      result = "free-space needs \"path\"";
      return out;
    }
    std::error_code sec;
    auto sp = fs::space(*p, sec);
    if (sec) {
      result = *p + ": " + sec.message();
      return out;
    }
    out["path"] = *p;
    out["size-bytes"] = static_cast<std::int64_t>(sp.available);
    out["total_size"] = static_cast<std::int64_t>(sp.capacity);
    return out;
  }
  if (method == "port-test") {
    out["port-is-open"] = ses.port() != 0;  // what the session knows: its listener is up
    return out;
  }
  if (method == "blocklist-update") {
    result = "blocklists are not supported by shoal yet";
    return out;
  }
  if (method == "torrent-rename-path") {
    // One torrent; "path" a file or folder as "files" lists it, "name" its new last part.
    const auto path = get_string(args, "path");
    const auto name = get_string(args, "name");
    if (ids.size() != 1 || !path || !name) {
      result = "torrent-rename-path needs one torrent, \"path\" and \"name\"";
      return out;
    }
    if (name->empty() || name->find('/') != std::string::npos || *name == "." || *name == "..") {
      result = "\"name\" must be one path component";
      return out;
    }
    std::string from = *path;
    while (!from.empty() && from.back() == '/')
      from.pop_back();
    const auto slash = from.rfind('/');
    const std::string to = (slash == std::string::npos ? std::string() : from.substr(0, slash + 1)) + *name;
    torrent_handle th(&ses, ids.front());
    auto [ec, why] = th.rename_path(from, to);
    if (ec) {
      result = why;
      return out;
    }
    // The torrent's own folder (or its one file): Transmission shows the new name too.
    if (from.find('/') == std::string::npos) th.set_display_name(to);
    out["path"] = *path;
    out["name"] = *name;
    out["id"] = ids.front();
    return out;
  }
  result = "method name not recognized";
  return out;
}

}  // namespace shoal::daemon
