// `shoal sync`: a folder kept in sync between devices. These commands make and inspect a
// folder on this device (init, join, status, scan, keys); `run` (cmd_sync_run.cpp) keeps it
// in sync with its peers.
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cmd_sync_run.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "core/text.hpp"
#include "live_display.hpp"
#include "sync/archive.hpp"
#include "sync/folder.hpp"
#include "sync/qr.hpp"

namespace shoal::cli {

namespace {

struct sync_args {
  std::string dir;
  std::string key;       // join: the key's text, or "-" for standard input
  std::string key_file;  // join --key-file
  std::string path;      // restore PATH
  std::string version;   // restore --version
  bool list = false;     // restore --list
  bool qr = false;       // init --qr
  bool json = false;
};

std::string share_hex(const sync::folder_key& k) {
  return to_hex(as_view(k.share()));
}

std::string type_name(const sync::folder_key& k) {
  return k.can_write() ? "read-write" : "read-only";
}

void print_keys(const sync::folder_key& k, bool json) {
  if (json) {
    boost::json::object o;
    o["event"] = "keys";
    if (k.can_write()) o["read_write_key"] = k.read_write_text();
    o["read_only_key"] = k.read_only_text();
    fmt::print("{}\n", plain_json(o));
    return;
  }
  if (k.can_write()) fmt::print("read-write key: {}\n", k.read_write_text());
  fmt::print("read-only key: {}\n", k.read_only_text());
}

void print_scan(const sync::scan_stats& s, bool json) {
  const double mbps = s.seconds > 0 ? static_cast<double>(s.bytes_hashed) / s.seconds / 1e6 : 0.0;
  if (json) {
    boost::json::object o;
    o["event"] = "scan";
    o["added"] = s.added;
    o["changed"] = s.changed;
    o["deleted"] = s.deleted;
    o["unchanged"] = s.unchanged;
    o["moved"] = s.moved;
    o["files_hashed"] = s.files_hashed;
    o["bytes_hashed"] = s.bytes_hashed;
    o["errors"] = s.errors;
    o["skipped"] = s.skipped;
    o["seconds"] = s.seconds;
    fmt::print("{}\n", plain_json(o));
    return;
  }
  fmt::print(
      "added {}, changed {}, deleted {}, unchanged {}; {} moved (not read); hashed {} files, {} bytes in "
      "{:.3f} s ({:.0f} MB/s)\n",
      s.added, s.changed, s.deleted, s.unchanged, s.moved, s.files_hashed, s.bytes_hashed, s.seconds, mbps);
  if (s.errors > 0) warn(std::to_string(s.errors) + " path(s) could not be read and kept their records");
  if (s.skipped > 0) warn(std::to_string(s.skipped) + " file(s) changed while being read: the next scan takes them");
}

sync::scan_options scan_opts() {
  sync::scan_options o;
  o.on_error = [](const std::string& path, const std::string& why) { warn(printable(path) + ": " + why); };
  return o;
}

bool is_folder(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(sync::folder_paths(dir).key_file, ec);
}

// Makes the folder with `key`, scans it once and reports; shared by init and join.
int set_up(const sync_args& a, const sync::folder_key& key, bool show_keys) {
  auto f = sync::folder::create(a.dir, key);
  if (!f) return fail(f.err().message());
  auto s = f->scan(scan_opts());
  if (!s) return fail(s.err().message());
  if (a.json) {
    boost::json::object o;
    o["event"] = show_keys ? "init" : "join";
    if (show_keys) {
      o["read_write_key"] = f->key().read_write_text();
      o["read_only_key"] = f->key().read_only_text();
    }
    o["key_type"] = type_name(f->key());
    o["share_id"] = share_hex(f->key());
    o["device_id"] = f->device().id();
    o["files_hashed"] = s->files_hashed;
    o["bytes_hashed"] = s->bytes_hashed;
    o["seconds"] = s->seconds;
    fmt::print("{}\n", plain_json(o));
    return exit_ok;
  }
  if (show_keys) {
    print_keys(f->key(), false);
    // On a terminal, a key to scan: the read-only one unless --qr asks for the read-write one
    // (the code is on the screen for anyone nearby to photograph).
    if (a.qr || ::isatty(STDOUT_FILENO) == 1) {
      const std::string text = a.qr ? f->key().read_write_text() : f->key().read_only_text();
      if (auto q = sync::qr_encode(text, sync::qr_ecc::medium)) {
        fmt::print("{} key as a QR code:\n{}", a.qr ? "read-write" : "read-only", sync::render_half_blocks(*q));
      }
    }
  } else {
    fmt::print("joined {} as {}: share id {}\n", printable(a.dir), type_name(f->key()), share_hex(f->key()));
  }
  std::fflush(stdout);
  fmt::print(stderr, "shoal: indexed {} files, {} bytes in {:.3f} s\n", s->files_hashed, s->bytes_hashed, s->seconds);
  return exit_ok;
}

int run_init(const sync_args& a) {
  if (is_folder(a.dir)) {
    return fail(a.dir + " is already a shoal sync folder: see shoal sync keys or shoal sync status");
  }
  return set_up(a, sync::folder_key::generate(), true);
}

// The key's text from the command line, a file or standard input (bounded).
int read_key_text(const sync_args& a, std::string& out) {
  std::string text;
  if (!a.key_file.empty() || a.key == "-") {
    std::istream* in = &std::cin;
    std::ifstream file;
    if (!a.key_file.empty()) {
      file.open(a.key_file, std::ios::binary);
      if (!file) return fail_errno(a.key_file, errno);
      in = &file;
    }
    text.resize(sync::max_key_input + 1);
    in->read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in->gcount()));
  } else {
    text = a.key;
  }
  out = std::move(text);
  return exit_ok;
}

int run_join(const sync_args& a) {
  std::string text;
  if (int rc = read_key_text(a, text); rc != exit_ok) return rc;
  auto key = sync::folder_key::parse(text);
  std::fill(text.begin(), text.end(), '\0');
  if (!key) return fail(key.err().message());
  return set_up(a, *key, false);
}

int run_status(const sync_args& a) {
  auto f = sync::folder::open(a.dir);
  if (!f) return fail(f.err().message());
  const auto t = f->db().totals();
  const auto seq = f->db().last_sequence();
  if (a.json) {
    boost::json::object o;
    o["event"] = "status";
    o["dir"] = a.dir;
    o["key_type"] = type_name(f->key());
    o["share_id"] = share_hex(f->key());
    o["dht_id"] = to_hex(as_view(f->key().dht()));
    o["device_id"] = f->device().id();
    o["files"] = t.files;
    o["dirs"] = t.dirs;
    o["symlinks"] = t.symlinks;
    o["deleted"] = t.deleted;
    o["bytes"] = t.bytes;
    o["sequence"] = seq;
    fmt::print("{}\n", plain_json(o));
    return exit_ok;
  }
  fmt::print("folder:    {}\n", printable(a.dir));
  fmt::print("key:       {}\n", type_name(f->key()));
  fmt::print("share id:  {}\n", share_hex(f->key()));
  fmt::print("device id: {}\n", f->device().id());
  fmt::print("files:     {} ({} bytes), {} directories, {} symlinks, {} deleted\n", t.files, t.bytes, t.dirs,
             t.symlinks, t.deleted);
  fmt::print("sequence:  {}\n", seq);
  return exit_ok;
}

int run_scan(const sync_args& a) {
  auto f = sync::folder::open(a.dir);
  if (!f) return fail(f.err().message());
  auto s = f->scan(scan_opts());
  if (!s) return fail(s.err().message());
  print_scan(*s, a.json);
  return exit_ok;
}

int run_keys(const sync_args& a) {
  auto f = sync::folder::open(a.dir);
  if (!f) return fail(f.err().message());
  print_keys(f->key(), a.json);
  return exit_ok;
}

const char* archived_type_name(sync::archived_type t) {
  switch (t) {
    case sync::archived_type::dir:
      return "dir";
    case sync::archived_type::symlink:
      return "symlink";
    case sync::archived_type::file:
      break;
  }
  return "file";
}

// True if a `shoal sync run` holds DIR/.shoal/run.lock (it then scans what restore wrote).
bool is_running(const sync::folder_paths& p) {
  const auto lock_file = p.state / "run.lock";
  const int fd = ::open(lock_file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

int run_restore(const sync_args& a) {
  auto f = sync::folder::open(a.dir);
  if (!f) return fail(f.err().message());
  const auto& root = f->paths().dir;
  if (a.list || a.path.empty()) {
    auto all = sync::list_archive(root, a.path);
    if (!all) return fail(all.err().message());
    if (a.json) {
      boost::json::array arr;
      for (const auto& v : *all) {
        boost::json::object o;
        o["path"] = printable(v.path);
        o["version"] = v.version;
        o["archived_at"] = v.archived_at;
        o["bytes"] = v.bytes;
        o["type"] = archived_type_name(v.type);
        arr.push_back(std::move(o));
      }
      boost::json::object o;
      o["event"] = "archive";
      o["versions"] = std::move(arr);
      fmt::print("{}\n", plain_json(o));
      return exit_ok;
    }
    if (all->empty()) {
      fmt::print("no archived versions{}\n", a.path.empty() ? "" : " of " + printable(a.path));
      return exit_ok;
    }
    for (const auto& v : *all) {
      fmt::print("{}  {}  {} bytes{}\n", printable(v.path), v.version, v.bytes,
                 v.type == sync::archived_type::file ? "" : std::string(" (") + archived_type_name(v.type) + ")");
    }
    return exit_ok;
  }
  auto r = sync::restore_version(root, a.path, a.version);
  if (!r) return fail(r.err().message());
  const bool running = is_running(f->paths());
  if (a.json) {
    boost::json::object o;
    o["event"] = "restored";
    o["path"] = printable(r->path);
    o["version"] = r->version;
    o["bytes"] = r->bytes;
    fmt::print("{}\n", plain_json(o));
  } else {
    fmt::print("restored {} (version {}, {} bytes)\n", printable(r->path), r->version, r->bytes);
  }
  std::fflush(stdout);
  if (running) return exit_ok;  // the running folder's watcher takes it
  // Indexed now, so it is a local change the next run sends.
  auto s = f->scan(scan_opts());
  if (!s) return fail(s.err().message());
  return exit_ok;
}

}  // namespace

runner add_sync(CLI::App& app) {
  auto a = std::make_shared<sync_args>();
  app.require_subcommand(1, 1);
  auto dir_opt = [a](CLI::App* s) { s->add_option("DIR", a->dir, "The folder")->required(); };

  auto* init = app.add_subcommand("init", "Make DIR a new synced folder: a new key, a first scan; prints its keys");
  dir_opt(init);
  init->add_flag("--json", a->json, "Print one JSON object (the keys, share id, device id, what was indexed)");
  init->add_flag("--qr", a->qr,
                 "Show the read-write key as a QR code (instead of the read-only key's), even when standard output "
                 "is not a terminal");
  init->footer(
      "Prints 'read-write key: KEY' then 'read-only key: KEY'. Give the read-write key to devices that may change the "
      "folder, the read-only key to devices that may only receive it. Both are secrets: whoever has one has the "
      "folder's contents. Everything shoal keeps lives in DIR/.shoal/ (never synced). On a terminal a QR code of the "
      "read-only key follows (the safer one to show on a screen); --qr shows the read-write key's instead.");

  auto* join = app.add_subcommand("join", "Make DIR a copy of an existing folder, given one of its keys");
  dir_opt(join);
  join->add_option("KEY", a->key, "The folder's read-write or read-only key, or - to read it from standard input");
  join->add_option("--key-file", a->key_file, "Read the key from this file (a key on the command line shows in ps)");
  join->add_flag("--json", a->json, "Print one JSON object (key type, share id, device id)");
  join->footer(
      "A mistyped key is refused (its checksum does not match). A DIR that already belongs to another folder "
      "is refused.");

  auto* status = app.add_subcommand("status", "Show a folder's key type, share id, device id and index totals");
  dir_opt(status);
  status->add_flag("--json", a->json, "Print one JSON object");

  auto* scan = app.add_subcommand("scan", "Scan DIR once: hash what changed and update its index");
  dir_opt(scan);
  scan->add_flag("--json", a->json, "Print one JSON object (added, changed, deleted, bytes hashed, seconds)");

  auto* keys = app.add_subcommand("keys", "Print the keys this device has for DIR (read-write and read-only)");
  dir_opt(keys);
  keys->add_flag("--json", a->json, "Print one JSON object");

  auto* restore = app.add_subcommand("restore", "List the versions in DIR's archive, or bring one back");
  dir_opt(restore);
  restore->add_option("PATH", a->path, "The file or directory (relative to DIR) to list or bring back");
  restore->add_flag("--list", a->list, "List PATH's archived versions (all of them without PATH)");
  restore->add_option("--version", a->version, "The version to bring back (YYYYMMDD-HHMMSS[-N]; default: the newest)");
  restore->add_flag("--json", a->json, "Print one JSON object");
  restore->footer(
      "Deleted and replaced versions are kept in DIR/.shoal/archive/ as PATH~YYYYMMDD-HHMMSS (UTC, when they were "
      "archived) for archive_days (default 30) and within archive_max_mb (default: no bound), set in "
      "DIR/.shoal/config as 'name = value' lines; pruned at scan time. A version brought back is copied to PATH "
      "with the current time (what was at PATH goes to the archive first) and indexed as a local change, which "
      "the folder's peers then receive.");

  auto run = add_sync_run(app);

  return [a, init, join, status, scan, keys, restore, run]() -> int {
    if (run.app->parsed()) return run.run();
    if (init->parsed()) return run_init(*a);
    if (join->parsed()) {
      const int sources = (a->key.empty() ? 0 : 1) + (a->key_file.empty() ? 0 : 1);
      if (sources != 1) return usage_error("sync join", "give the key as KEY, - (standard input) or --key-file FILE");
      return run_join(*a);
    }
    if (status->parsed()) return run_status(*a);
    if (scan->parsed()) return run_scan(*a);
    if (keys->parsed()) return run_keys(*a);
    if (restore->parsed()) {
      if (a->list && !a->version.empty()) return usage_error("sync restore", "--list and --version do not go together");
      if (!a->version.empty() && a->path.empty()) return usage_error("sync restore", "--version needs PATH");
      return run_restore(*a);
    }
    return exit_usage;
  };
}

}  // namespace shoal::cli
