#include "daemon/config.hpp"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "storage/resume.hpp"

namespace shoal::daemon {

namespace json = boost::json;

std::string hash_password(std::string_view password) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to start");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("out of memory hashing the password");
  }
  return out;
}

bool in_turtle_window(const daemon_config& c, int weekday, std::uint32_t minute) {
  if ((c.alt_speed_time_day & (1u << (weekday % 7))) == 0) return false;
  const auto b = c.alt_speed_time_begin, e = c.alt_speed_time_end;
  if (b == e) return false;
  return b < e ? minute >= b && minute < e : minute >= b || minute < e;
}

// --- settings ---------------------------------------------------------------------------

json::object config_json(const daemon_config& c) {
  json::object o;
  o["download-dir"] = c.download_dir.string();
  o["rpc-bind-address"] = c.rpc_bind;
  o["rpc-tls-enabled"] = c.rpc_tls_enabled;
  o["rpc-tls-cert"] = c.rpc_tls_cert.string();
  o["rpc-tls-key"] = c.rpc_tls_key.string();
  o["rpc-port"] = c.rpc_port;
  o["peer-port"] = c.peer_port;
  o["dht-enabled"] = c.dht;
  o["lpd-enabled"] = c.lsd;
  o["pex-enabled"] = c.pex;
  o["port-forwarding-enabled"] = c.port_mapping;
  o["encryption"] = c.encryption;
  o["speed-limit-down"] = c.speed_limit_down / 1000;
  o["speed-limit-up"] = c.speed_limit_up / 1000;
  o["speed-limit-down-enabled"] = c.speed_limit_down_enabled;
  o["speed-limit-up-enabled"] = c.speed_limit_up_enabled;
  o["alt-speed-down"] = c.alt_speed_down / 1000;
  o["alt-speed-up"] = c.alt_speed_up / 1000;
  o["alt-speed-enabled"] = c.alt_speed_enabled;
  o["download-queue-size"] = c.download_queue_size;
  o["download-queue-enabled"] = c.download_queue_enabled;
  o["seed-queue-size"] = c.seed_queue_size;
  o["seed-queue-enabled"] = c.seed_queue_enabled;
  o["seedRatioLimit"] = c.seed_ratio_limit;
  o["seedRatioLimited"] = c.seed_ratio_limited;
  o["idle-seeding-limit"] = c.idle_seeding_limit;
  o["idle-seeding-limit-enabled"] = c.idle_seeding_limit_enabled;
  o["start-added-torrents"] = c.start_added_torrents;
  o["incomplete-dir"] = c.incomplete_dir.string();
  o["incomplete-dir-enabled"] = c.incomplete_dir_enabled;
  o["watch-dir"] = c.watch_dir.string();
  o["watch-dir-enabled"] = c.watch_dir_enabled;
  o["script-torrent-done-filename"] = c.script_torrent_done_filename;
  o["script-torrent-done-enabled"] = c.script_torrent_done_enabled;
  o["alt-speed-time-enabled"] = c.alt_speed_time_enabled;
  o["alt-speed-time-begin"] = c.alt_speed_time_begin;
  o["alt-speed-time-end"] = c.alt_speed_time_end;
  o["alt-speed-time-day"] = c.alt_speed_time_day;
  o["peer-limit-per-torrent"] = c.peer_limit_per_torrent;
  o["peer-limit-global"] = c.peer_limit_global;
  return o;
}

namespace {
// Reads the fields config_json writes, plus the ones kept out of RPC answers.
std::optional<std::string> read_config(const json::object& o, daemon_config& c) {
  auto str = [&](const char* k, auto set) -> bool {
    if (auto it = o.find(k); it != o.end()) {
      if (!it->value().is_string()) return false;
      set(std::string(it->value().as_string()));
    }
    return true;
  };
  auto num = [&](const char* k, auto set) -> bool {
    if (auto it = o.find(k); it != o.end()) {
      if (!it->value().is_number() || !std::isfinite(it->value().to_number<double>())) return false;
      set(it->value().to_number<double>());
    }
    return true;
  };
  auto flag = [&](const char* k, bool& dst) -> bool {
    if (auto it = o.find(k); it != o.end()) {
      if (!it->value().is_bool()) return false;
      dst = it->value().as_bool();
    }
    return true;
  };
  auto u16 = [](double v) { return static_cast<std::uint16_t>(std::clamp(v, 0.0, 65535.0)); };
  auto u32 = [](double v) { return static_cast<std::uint32_t>(std::clamp(v, 0.0, 4e9)); };
  // kB/s; past 10^12 kB/s (an exabyte a second) is "no limit" anyway, and a cast of a larger
  // double would be undefined.
  auto kb = [](double v) { return static_cast<std::uint64_t>(std::clamp(v, 0.0, 1e12) * 1000); };
  struct check {
    const char* name;
    bool ok;
  };
  const check checks[] = {
      {"download-dir", str("download-dir", [&](std::string s) { c.download_dir = s; })},
      {"rpc-bind-address", str("rpc-bind-address", [&](std::string s) { c.rpc_bind = s; })},
      {"rpc-username", str("rpc-username", [&](std::string s) { c.rpc_username = s; })},
      {"rpc-tls-cert", str("rpc-tls-cert", [&](std::string s) { c.rpc_tls_cert = s; })},
      {"rpc-tls-key", str("rpc-tls-key", [&](std::string s) { c.rpc_tls_key = s; })},
      {"rpc-tls-enabled", flag("rpc-tls-enabled", c.rpc_tls_enabled)},
      {"rpc-password-hash", str("rpc-password-hash", [&](std::string s) { c.rpc_password_hash = s; })},
      {"encryption", str("encryption", [&](std::string s) { c.encryption = s; })},
      {"incomplete-dir", str("incomplete-dir", [&](std::string s) { c.incomplete_dir = s; })},
      {"watch-dir", str("watch-dir", [&](std::string s) { c.watch_dir = s; })},
      {"script-torrent-done-filename",
       str("script-torrent-done-filename", [&](std::string s) { c.script_torrent_done_filename = s; })},
      {"incomplete-dir-enabled", flag("incomplete-dir-enabled", c.incomplete_dir_enabled)},
      {"watch-dir-enabled", flag("watch-dir-enabled", c.watch_dir_enabled)},
      {"script-torrent-done-enabled", flag("script-torrent-done-enabled", c.script_torrent_done_enabled)},
      {"alt-speed-time-enabled", flag("alt-speed-time-enabled", c.alt_speed_time_enabled)},
      {"alt-speed-time-begin", num("alt-speed-time-begin", [&](double v) { c.alt_speed_time_begin = u32(v); })},
      {"alt-speed-time-end", num("alt-speed-time-end", [&](double v) { c.alt_speed_time_end = u32(v); })},
      {"alt-speed-time-day", num("alt-speed-time-day", [&](double v) { c.alt_speed_time_day = u32(v); })},
      {"rpc-port", num("rpc-port", [&](double v) { c.rpc_port = u16(v); })},
      {"peer-port", num("peer-port", [&](double v) { c.peer_port = u16(v); })},
      {"speed-limit-down", num("speed-limit-down", [&](double v) { c.speed_limit_down = kb(v); })},
      {"speed-limit-up", num("speed-limit-up", [&](double v) { c.speed_limit_up = kb(v); })},
      {"alt-speed-down", num("alt-speed-down", [&](double v) { c.alt_speed_down = kb(v); })},
      {"alt-speed-up", num("alt-speed-up", [&](double v) { c.alt_speed_up = kb(v); })},
      {"download-queue-size", num("download-queue-size", [&](double v) { c.download_queue_size = u32(v); })},
      {"seed-queue-size", num("seed-queue-size", [&](double v) { c.seed_queue_size = u32(v); })},
      {"seedRatioLimit", num("seedRatioLimit", [&](double v) { c.seed_ratio_limit = v; })},
      {"idle-seeding-limit", num("idle-seeding-limit", [&](double v) { c.idle_seeding_limit = u32(v); })},
      {"peer-limit-per-torrent", num("peer-limit-per-torrent", [&](double v) { c.peer_limit_per_torrent = u32(v); })},
      {"peer-limit-global", num("peer-limit-global", [&](double v) { c.peer_limit_global = u32(v); })},
      {"dht-enabled", flag("dht-enabled", c.dht)},
      {"lpd-enabled", flag("lpd-enabled", c.lsd)},
      {"pex-enabled", flag("pex-enabled", c.pex)},
      {"port-forwarding-enabled", flag("port-forwarding-enabled", c.port_mapping)},
      {"speed-limit-down-enabled", flag("speed-limit-down-enabled", c.speed_limit_down_enabled)},
      {"speed-limit-up-enabled", flag("speed-limit-up-enabled", c.speed_limit_up_enabled)},
      {"alt-speed-enabled", flag("alt-speed-enabled", c.alt_speed_enabled)},
      {"download-queue-enabled", flag("download-queue-enabled", c.download_queue_enabled)},
      {"seed-queue-enabled", flag("seed-queue-enabled", c.seed_queue_enabled)},
      {"seedRatioLimited", flag("seedRatioLimited", c.seed_ratio_limited)},
      {"idle-seeding-limit-enabled", flag("idle-seeding-limit-enabled", c.idle_seeding_limit_enabled)},
      {"start-added-torrents", flag("start-added-torrents", c.start_added_torrents)},
  };
  for (const auto& ch : checks)
    if (!ch.ok) return std::string(ch.name) + " has the wrong type";
  // A list in the file replaces the one before (a reload does not append).
  auto list = [&](const char* k, auto add) -> bool {
    if (auto it = o.find(k); it != o.end()) {
      if (!it->value().is_array()) return false;
      if (std::string_view(k) == "rpc-host-whitelist") c.host_whitelist.clear();
      if (std::string_view(k) == "allowed-dirs") c.allowed_dirs.clear();
      for (const auto& e : it->value().as_array()) {
        if (!e.is_string()) return false;
        add(std::string(e.as_string()));
      }
    }
    return true;
  };
  if (auto it = o.find("feeds"); it != o.end()) {
    if (!it->value().is_array()) return "feeds must be a list of objects";
    c.feeds.clear();
    for (const auto& e : it->value().as_array()) {
      if (!e.is_object()) return "feeds must be a list of objects";
      const auto& fo = e.as_object();
      feed_config f;
      auto fstr = [&](const char* k, std::string& dst) -> bool {
        auto* v = fo.if_contains(k);
        if (!v) return true;
        if (!v->is_string()) return false;
        dst = std::string(v->as_string());
        return true;
      };
      std::string dir;
      if (!fstr("url", f.url) || !fstr("include", f.include) || !fstr("exclude", f.exclude) ||
          !fstr("download-dir", dir))
        return "feeds: url, include, exclude and download-dir are strings";
      if (f.url.empty()) return "feeds: each needs a url";
      f.download_dir = dir;
      if (auto* v = fo.if_contains("interval")) {
        if (!v->is_number() || !std::isfinite(v->to_number<double>())) return "feeds: interval is a number of seconds";
        f.interval = static_cast<std::uint32_t>(std::clamp(v->to_number<double>(), 10.0, 86400.0 * 7));
      }
      if (auto* v = fo.if_contains("labels")) {
        if (!v->is_array()) return "feeds: labels is a list of names";
        for (const auto& l : v->as_array()) {
          if (!l.is_string()) return "feeds: labels is a list of names";
          f.labels.emplace_back(l.as_string());
        }
      }
      if (c.feeds.size() < 100) c.feeds.push_back(std::move(f));
    }
  }
  if (!list("rpc-host-whitelist", [&](std::string s) { c.host_whitelist.push_back(s); }))
    return "rpc-host-whitelist must be a list of names";
  if (!list("allowed-dirs", [&](std::string s) { c.allowed_dirs.emplace_back(s); }))
    return "allowed-dirs must be a list of folders";
  return std::nullopt;
}
}  // namespace

result<daemon_config> parse_config(std::string_view text, daemon_config c) {
  boost::system::error_code jec;
  auto v = json::parse(text, jec);
  if (jec || !v.is_object()) {
    return error{errc::syntax, std::string("not a JSON object (") + (jec ? jec.message() : "wrong type") +
                                   "); fix it or delete it to start from the defaults"};
  }
  if (auto bad = read_config(v.as_object(), c)) return error{errc::invalid_argument, *bad};
  return c;
}

std::string read_whole_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

result<daemon_config> load_config(const fs::path& file, daemon_config c) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return c;
  auto r = parse_config(read_whole_file(file), std::move(c));
  if (!r) return error{r.err().code, file.string() + ": " + r.err().detail};
  return r;
}

std::error_code save_config(const fs::path& file, const daemon_config& c) {
  auto o = config_json(c);
  o["rpc-username"] = c.rpc_username;
  o["rpc-password-hash"] = c.rpc_password_hash;
  json::array hosts, dirs;
  for (const auto& h : c.host_whitelist)
    hosts.emplace_back(h);
  for (const auto& d : c.allowed_dirs)
    dirs.emplace_back(d.string());
  o["rpc-host-whitelist"] = std::move(hosts);
  json::array feeds;
  for (const auto& f : c.feeds) {
    json::array labels;
    for (const auto& l : f.labels)
      labels.emplace_back(l);
    feeds.emplace_back(json::object{{"url", f.url},
                                    {"include", f.include},
                                    {"exclude", f.exclude},
                                    {"download-dir", f.download_dir.string()},
                                    {"labels", std::move(labels)},
                                    {"interval", f.interval}});
  }
  o["feeds"] = std::move(feeds);
  o["allowed-dirs"] = std::move(dirs);
  return write_file_atomically(file, json::serialize(o) + "\n");
}

}  // namespace shoal::daemon
