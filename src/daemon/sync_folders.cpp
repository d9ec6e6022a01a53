#include "daemon/sync_folders.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>

#include "core/hash.hpp"
#include "core/text.hpp"
#include "daemon/config.hpp"
#include "session/session.hpp"
#include "storage/resume.hpp"
#include "sync/discovery.hpp"
#include "sync/folder.hpp"
#include "sync/fsops.hpp"
#include "sync/hub.hpp"

namespace shoal::daemon {

namespace json = boost::json;
namespace asio = boost::asio;

namespace {

constexpr std::string_view conflict_mark = ".sync-conflict-";
// Entries looked at when a folder is opened to find its conflict copies (a huge folder is
// not walked whole on the network thread).
constexpr std::size_t max_walk = 200'000;

std::optional<net::endpoint> parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size() || text.size() > 64) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  unsigned port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  return net::endpoint(addr, static_cast<std::uint16_t>(port));
}

std::string endpoint_text(const net::endpoint& ep) {
  boost::system::error_code ec;
  const auto a = ep.address().to_string(ec);
  return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

// An announce URL a tracker loop can use: http://, https:// or udp://, printable, bounded.
bool tracker_url_ok(const std::string& u) {
  if (u.size() > 2048) return false;
  for (unsigned char c : u)
    if (c <= 0x20 || c == 0x7f) return false;
  return u.starts_with("http://") || u.starts_with("https://") || u.starts_with("udp://");
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct sync_folders::entry {
  std::uint32_t id = 0;
  fs::path dir;
  std::vector<net::endpoint> dial;
  std::vector<std::string> trackers;
  std::unique_ptr<sync::folder> f;
  std::unique_ptr<sync::engine> eng;
  std::unique_ptr<sync::discovery> disc;
  std::string error;
  std::deque<sync_event_view> events;
  std::set<std::string> conflicts;

  void note(const sync::engine_event& ev) {
    if (events.size() >= max_events) events.pop_front();
    events.push_back({now_seconds(), ev.kind, ev.path, ev.device, ev.detail});
    // Conflict copies: made here ("conflict": the copy's path in detail), or made elsewhere
    // and synced here like any file; gone when deleted.
    auto mark = [&](const std::string& p) {
      if (p.find(conflict_mark) != std::string::npos && conflicts.size() < max_conflicts) conflicts.insert(p);
    };
    if (ev.kind == "conflict") mark(ev.detail);
    if (ev.kind == "sync") mark(ev.path);
    if (ev.kind == "delete") conflicts.erase(ev.path);
  }

  void find_conflicts() {
    std::error_code ec;
    std::size_t seen = 0;
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end && seen < max_walk && conflicts.size() < max_conflicts; it.increment(ec), ++seen) {
      if (it.depth() == 0 && it->path().filename() == ".shoal") {
        it.disable_recursion_pending();
        continue;
      }
      const auto name = it->path().filename().string();
      if (name.find(conflict_mark) != std::string::npos) conflicts.insert(it->path().lexically_relative(dir).string());
    }
  }
};

sync_folders::sync_folders(session& ses, options o) : ses_(ses), opt_(std::move(o)) {}

sync_folders::~sync_folders() {
  for (auto& [id, e] : folders_) {
    if (e->disc) e->disc->stop();
    if (e->eng) e->eng->stop();
  }
}

result<bool> sync_folders::start() {
  hub_ = std::make_unique<sync::hub>(ses_);
  if (auto s = hub_->start(); !s) return s;
  const auto text = read_whole_file(opt_.state_file);
  if (text.empty()) return true;
  boost::system::error_code jec;
  auto v = json::parse(text, jec);
  if (jec || !v.is_object() || !v.as_object().contains("folders") || !v.as_object().at("folders").is_array()) {
    std::fprintf(stderr, "shoal daemon: %s: not a list of folders; no folder is synced\n", opt_.state_file.c_str());
    return true;
  }
  for (const auto& fv : v.as_object().at("folders").as_array()) {
    if (!fv.is_object() || folders_.size() >= max_folders) continue;
    const auto& o = fv.as_object();
    auto it = o.find("path");
    if (it == o.end() || !it->value().is_string()) continue;
    const fs::path dir(std::string(it->value().as_string()));
    if (!dir.is_absolute()) continue;
    std::vector<net::endpoint> dial;
    if (auto pi = o.find("peers"); pi != o.end() && pi->value().is_array())
      for (const auto& p : pi->value().as_array())
        if (p.is_string() && dial.size() < max_dial)
          if (auto ep = parse_endpoint(std::string(p.as_string()))) dial.push_back(*ep);
    std::vector<std::string> trackers;
    if (auto ti = o.find("trackers"); ti != o.end() && ti->value().is_array())
      for (const auto& t : ti->value().as_array())
        if (t.is_string() && trackers.size() < sync::discovery_options::max_trackers &&
            tracker_url_ok(std::string(t.as_string())))
          trackers.emplace_back(t.as_string());
    auto e = open(dir, "", dial, trackers);
    if (!e) {
      // Listed with its error (a disk not mounted yet, a folder moved): the user sees it
      // and may remove it; it is tried again at the next start.
      auto failed = std::make_shared<entry>();
      failed->id = next_id_++;
      failed->dir = dir;
      failed->dial = dial;
      failed->trackers = trackers;
      failed->error = e.err().message();
      std::fprintf(stderr, "shoal daemon: sync folder %s: %s\n", dir.c_str(), failed->error.c_str());
      folders_[failed->id] = failed;
      continue;
    }
    folders_[(*e)->id] = *e;
  }
  return true;
}

void sync_folders::stop(std::function<void()> done) {
  auto left = std::make_shared<std::size_t>(1);  // one for this loop
  auto one_ended = [left, done = std::make_shared<std::function<void()>>(std::move(done))] {
    if (--*left == 0 && *done) (*done)();
  };
  for (auto& [id, e] : folders_) {
    if (e->disc) e->disc->stop();
    if (!e->eng) continue;
    ++*left;
    e->eng->stop(one_ended);
  }
  asio::post(ses_.io(), one_ended);
}

result<std::shared_ptr<sync_folders::entry>> sync_folders::open(const fs::path& dir, const std::string& key,
                                                                const std::vector<net::endpoint>& peers,
                                                                const std::vector<std::string>& trackers) {
  for (const auto& [id, e] : folders_)
    if (e->dir == dir) return error{errc::invalid_argument, dir.string() + " is synced already"};
  result<sync::folder> f = error{errc::io, ""};
  std::error_code ec;
  if (!key.empty()) {
    auto k = sync::folder_key::parse(key);
    if (!k) return error{errc::invalid_argument, "the key is not a valid folder key (" + k.err().message() + ")"};
    f = sync::folder::create(dir, *k);
  } else if (fs::exists(sync::folder_paths(dir).key_file, ec)) {
    f = sync::folder::open(dir);
  } else {
    f = sync::folder::create(dir, sync::folder_key::generate());
  }
  if (!f) return f.err();
  auto e = std::make_shared<entry>();
  e->id = next_id_++;
  e->dir = dir;
  e->dial = peers;
  e->trackers = trackers;
  e->f = std::make_unique<sync::folder>(std::move(*f));
  e->find_conflicts();
  sync::engine_options eo;
  eo.peers = peers;
  eo.via = hub_.get();
  eo.on_event = [w = std::weak_ptr<entry>(e)](const sync::engine_event& ev) {
    if (auto s = w.lock()) s->note(ev);
  };
  eo.log = [dir](const std::string& line) {
    std::fprintf(stderr, "shoal daemon: %s: %s\n", dir.c_str(), line.c_str());
  };
  e->eng = std::make_unique<sync::engine>(ses_, *e->f, std::move(eo));
  if (auto s = e->eng->start(); !s) {
    e->eng.reset();  // releases the folder's run lock
    return s.err();
  }
  sync::discovery_options dopt;
  dopt.local = opt_.local;
  dopt.trackers = trackers;
  dopt.warn = [dir](const std::string& w) { std::fprintf(stderr, "shoal daemon: %s: %s\n", dir.c_str(), w.c_str()); };
  e->disc = std::make_unique<sync::discovery>(ses_, *e->f, *e->eng, std::move(dopt));
  e->disc->start();
  return e;
}

result<sync_folder_view> sync_folders::add(const fs::path& dir, const std::string& key,
                                           const std::vector<std::string>& peers,
                                           const std::vector<std::string>& trackers) {
  if (folders_.size() >= max_folders)
    return error{errc::invalid_argument, "at most " + std::to_string(max_folders) + " folders are synced"};
  if (!dir.is_absolute()) return error{errc::invalid_argument, "the folder must be an absolute path"};
  if (peers.size() > max_dial) return error{errc::invalid_argument, "at most " + std::to_string(max_dial) + " peers"};
  std::vector<net::endpoint> dial;
  for (const auto& p : peers) {
    auto ep = parse_endpoint(p);
    if (!ep) return error{errc::invalid_argument, "peer '" + sync::shown(p) + "': expected IP:PORT"};
    dial.push_back(*ep);
  }
  if (trackers.size() > sync::discovery_options::max_trackers)
    return error{errc::invalid_argument,
                 "at most " + std::to_string(sync::discovery_options::max_trackers) + " trackers"};
  for (const auto& t : trackers)
    if (!tracker_url_ok(t))
      return error{errc::invalid_argument,
                   "tracker '" + sync::shown(t) + "': expected an http://, https:// or udp:// announce URL"};
  const fs::path where = dir.lexically_normal();
  // What a refused add made (a new DIR/.shoal/, a new DIR) goes again; what was there stays.
  std::error_code ec;
  const bool had_dir = fs::exists(fs::symlink_status(where, ec));
  const bool had_state = fs::exists(fs::symlink_status(where / ".shoal", ec));
  auto e = open(where, key, dial, trackers);
  if (!e) {
    if (!had_state) fs::remove_all(where / ".shoal", ec);
    if (!had_dir) fs::remove(where, ec);  // only if empty
    return e.err();
  }
  folders_[(*e)->id] = *e;
  save();
  return view(**e);
}

result<bool> sync_folders::remove(std::uint32_t id) {
  auto it = folders_.find(id);
  if (it == folders_.end()) return error{errc::invalid_argument, "no sync folder " + std::to_string(id)};
  auto e = it->second;
  folders_.erase(it);
  save();
  if (e->disc) e->disc->stop();
  if (e->eng) {
    // The engine and the folder go once every coroutine of the engine has ended.
    e->eng->stop([e] {
      e->disc.reset();
      e->eng.reset();
      e->f.reset();
    });
  }
  return true;
}

std::vector<sync_folder_view> sync_folders::list() const {
  std::vector<sync_folder_view> out;
  for (const auto& [id, e] : folders_)
    out.push_back(view(*e));
  return out;
}

result<sync_keys_view> sync_folders::keys(std::uint32_t id) const {
  auto it = folders_.find(id);
  if (it == folders_.end()) return error{errc::invalid_argument, "no sync folder " + std::to_string(id)};
  if (!it->second->f) return error{errc::io, "the folder is not open: " + it->second->error};
  const auto& k = it->second->f->key();
  return sync_keys_view{k.can_write() ? k.read_write_text() : std::string(), k.read_only_text()};
}

sync_folder_view sync_folders::view(const entry& e) const {
  sync_folder_view v;
  v.id = e.id;
  v.path = e.dir.string();
  for (const auto& ep : e.dial)
    v.dial.push_back(endpoint_text(ep));
  v.trackers = e.trackers;
  v.events.assign(e.events.begin(), e.events.end());
  std::error_code ec;
  for (const auto& c : e.conflicts)
    if (fs::exists(symlink_status(e.dir / c, ec))) v.conflicts.push_back(c);
  if (!e.f || !e.eng) {
    v.state = "error";
    v.error = e.error;
    return v;
  }
  v.share = to_hex(as_view(e.f->key().share()));
  v.access = e.f->key().can_write() ? "read-write" : "read-only";
  v.device = e.f->device().id();
  auto st = e.eng->status();
  v.state = st.state;
  v.peers = std::move(st.peers);
  v.queued = st.queued;
  try {
    const auto t = e.f->db().totals();
    v.files = t.files;
    v.dirs = t.dirs;
    v.bytes = t.bytes;
  } catch (const std::exception& ex) {
    v.error = ex.what();
  }
  return v;
}

void sync_folders::save() const {
  json::array arr;
  for (const auto& [id, e] : folders_) {
    json::object o;
    o["path"] = e->dir.string();
    json::array peers;
    for (const auto& ep : e->dial)
      peers.emplace_back(endpoint_text(ep));
    o["peers"] = std::move(peers);
    json::array trackers;
    for (const auto& t : e->trackers)
      trackers.emplace_back(t);
    o["trackers"] = std::move(trackers);
    arr.emplace_back(std::move(o));
  }
  json::object root;
  root["folders"] = std::move(arr);
  if (auto ec = write_file_atomically(opt_.state_file, json::serialize(root) + "\n"))
    std::fprintf(stderr, "shoal daemon: %s: %s\n", opt_.state_file.c_str(), ec.message().c_str());
}

}  // namespace shoal::daemon
