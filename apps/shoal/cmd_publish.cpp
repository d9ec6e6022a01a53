// shoal publish DIR --base-url URL: a web-seeded torrent per top-level entry of DIR and
// an RSS 2.0 feed listing them, for a folder served over HTTP at URL.
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "commands.hpp"
#include "console.hpp"
#include "core/hash.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "live_display.hpp"
#include "storage/creator.hpp"

namespace shoal::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* state_name = ".shoal-publish.json";
constexpr std::int64_t state_version = 1;

struct publish_args {
  std::string dir;
  std::string base_url;
  std::string out;
  std::string feed;
  std::string torrent_url;
  std::string title;
  std::string description;
  bool v1 = false, v2 = false, hybrid = false;
  std::string piece_size;
  std::vector<std::string> trackers;
  std::string comment;
  unsigned threads = 0;
  bool json = false;
};

// RFC 3986: everything but unreserved characters is percent-encoded.
std::string pct_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : repair_utf8(s)) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control characters but tab, newline and carriage return.
        if (u < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

// RFC 822 date (with a four-digit year, as RSS 2.0 readers expect), in UTC.
std::string rfc822(std::int64_t t) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", days[tm.tm_wday % 7], tm.tm_mday,
                     months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool starts_with_http(std::string_view u) {
  return u.starts_with("http://") || u.starts_with("https://");
}

std::string with_slash(std::string u) {
  if (u.empty() || u.back() != '/') u += '/';
  return u;
}

// What decides whether an entry must be hashed again: for a file its size and mtime; for
// a folder the same for every file and folder in it, digested.
struct fingerprint {
  std::string digest;       // hex
  std::uint64_t bytes = 0;  // total size of the files
  std::int64_t mtime = 0;   // newest modification time (seconds), the item's pubDate
  std::size_t files = 0;
};

result<fingerprint> take_fingerprint(const fs::path& p, bool folder) {
  std::string record;
  fingerprint fp;
  auto add = [&](const fs::path& file, const std::string& rel) -> std::optional<error> {
    struct stat sb {};
    if (::stat(file.c_str(), &sb) != 0) return error{errc::io, file.string() + ": " + std::strerror(errno), no_offset};
    const bool reg = S_ISREG(sb.st_mode);
    record += fmt::format("{}\n{}\n{}\n{}.{}\n", rel, reg ? 'f' : 'd', reg ? sb.st_size : 0, sb.st_mtim.tv_sec,
                          sb.st_mtim.tv_nsec);
    fp.mtime = std::max<std::int64_t>(fp.mtime, sb.st_mtim.tv_sec);
    if (reg) {
      fp.bytes += static_cast<std::uint64_t>(sb.st_size);
      ++fp.files;
    }
    return std::nullopt;
  };
  if (auto e = add(p, "")) return std::move(*e);
  if (folder) {
    std::error_code ec;
    fs::recursive_directory_iterator it(p, fs::directory_options::none, ec);
    if (ec) return error{errc::io, p.string() + ": " + ec.message(), no_offset};
    std::vector<std::pair<std::string, fs::path>> entries;
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) return error{errc::io, p.string() + ": " + ec.message(), no_offset};
      std::error_code sec;
      if (!it->is_regular_file(sec) && !it->is_directory(sec)) continue;
      entries.emplace_back(it->path().lexically_relative(p).generic_string(), it->path());
    }
    if (ec) return error{errc::io, p.string() + ": " + ec.message(), no_offset};
    std::sort(entries.begin(), entries.end());
    for (const auto& [rel, path] : entries)
      if (auto e = add(path, rel)) return std::move(*e);
  }
  fp.digest = to_hex(as_view(sha256(record)));
  return fp;
}

// Writes `data` to `path` through a temporary file and a rename.
std::optional<std::string> write_atomically(const fs::path& path, std::string_view data) {
  fs::path tmp = path;
  tmp += ".part." + std::to_string(::getpid());
  {
    errno = 0;
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) {
      const int err = errno ? errno : EIO;  // the failed open(2) or write(2)
      std::error_code ec;
      fs::remove(tmp, ec);
      return path.string() + ": cannot write: " + std::strerror(err);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return path.string() + ": " + ec.message();
  }
  return std::nullopt;
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One published entry, as recorded in the state file and listed in the feed.
struct item {
  std::string name;     // the entry's name in DIR
  std::string torrent;  // file name in OUT
  std::string fingerprint;
  std::string options;
  std::string info_hash;
  std::string magnet;
  std::int64_t mtime = 0;
  std::uint64_t bytes = 0;
  std::size_t files = 0;
  bool rehashed = false;
};

boost::json::object to_json(const item& it) {
  return boost::json::object{{"torrent", it.torrent}, {"fingerprint", it.fingerprint},
                             {"options", it.options}, {"info_hash", it.info_hash},
                             {"magnet", it.magnet},   {"mtime", it.mtime},
                             {"bytes", it.bytes},     {"files", it.files}};
}

std::optional<item> from_json(const std::string& name, const boost::json::value& v) {
  const auto* o = v.if_object();
  if (o == nullptr) return std::nullopt;
  item it;
  it.name = name;
  try {
    it.torrent = std::string(o->at("torrent").as_string());
    it.fingerprint = std::string(o->at("fingerprint").as_string());
    it.options = std::string(o->at("options").as_string());
    it.info_hash = std::string(o->at("info_hash").as_string());
    it.magnet = std::string(o->at("magnet").as_string());
    it.mtime = o->at("mtime").to_number<std::int64_t>();
    it.bytes = o->at("bytes").to_number<std::uint64_t>();
    it.files = o->at("files").to_number<std::size_t>();
  } catch (const std::exception&) {
    return std::nullopt;
  }
  // The torrent must stay a plain file name inside OUT.
  if (it.torrent.empty() || it.torrent.find('/') != std::string::npos || it.torrent.front() == '.') return std::nullopt;
  return it;
}

std::map<std::string, item> load_state(const fs::path& file) {
  std::map<std::string, item> out;
  auto text = read_file(file);
  if (!text) return out;
  boost::system::error_code ec;
  auto v = boost::json::parse(*text, ec);
  if (ec || !v.is_object()) {
    warn(file.string() + ": unreadable state, every entry will be hashed again");
    return out;
  }
  const auto& o = v.as_object();
  const auto* ver = o.if_contains("version");
  const auto* entries = o.if_contains("entries");
  if (ver == nullptr || !ver->is_int64() || ver->as_int64() != state_version || entries == nullptr ||
      !entries->is_object()) {
    return out;
  }
  for (const auto& [k, e] : entries->as_object()) {
    if (auto it = from_json(std::string(k), e)) out.emplace(it->name, std::move(*it));
  }
  return out;
}

std::string feed_xml(const publish_args& a, const std::string& title, const std::string& base,
                     const std::string& torrent_base, const std::vector<item>& items, const fs::path& out,
                     std::int64_t now) {
  std::string x;
  x += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  // The torrent namespace (contentLength, infoHash, magnetURI) as torrent feeds write it.
  x += "<rss version=\"2.0\" xmlns:torrent=\"http://xmlns.ezrss.it/0.1/\">\n<channel>\n";
  x += fmt::format("<title>{}</title>\n", xml_escape(title));
  x += fmt::format("<link>{}</link>\n", xml_escape(base));
  const std::string description =
      a.description.empty() ? "Torrents of " + title + ", web-seeded from " + base : a.description;
  x += fmt::format("<description>{}</description>\n", xml_escape(description));
  x += "<generator>shoal/0.1.0</generator>\n";
  x += fmt::format("<lastBuildDate>{}</lastBuildDate>\n", rfc822(now));
  for (const item& it : items) {
    std::error_code ec;
    const auto length = fs::file_size(out / it.torrent, ec);
    const std::string url = torrent_base + pct_encode(it.torrent);
    x += "<item>\n";
    x += fmt::format("<title>{}</title>\n", xml_escape(it.name));
    x += fmt::format("<link>{}</link>\n", xml_escape(url));
    x += fmt::format("<description>{}</description>\n",
                     xml_escape(fmt::format("{} ({} in {} file{}). Magnet link: {}", it.name, human_size(it.bytes),
                                            it.files, it.files == 1 ? "" : "s", it.magnet)));
    x += fmt::format("<guid isPermaLink=\"false\">{}</guid>\n", xml_escape(it.info_hash));
    x += fmt::format("<pubDate>{}</pubDate>\n", rfc822(it.mtime));
    x += fmt::format("<torrent:contentLength>{}</torrent:contentLength>\n", it.bytes);
    if (it.info_hash.size() == 40) x += fmt::format("<torrent:infoHash>{}</torrent:infoHash>\n", it.info_hash);
    x += fmt::format("<torrent:magnetURI>{}</torrent:magnetURI>\n", xml_escape(it.magnet));
    x += fmt::format("<enclosure url=\"{}\" length=\"{}\" type=\"application/x-bittorrent\"/>\n", xml_escape(url),
                     ec ? 0 : length);
    x += "</item>\n";
  }
  x += "</channel>\n</rss>\n";
  return x;
}

// The magnet link `uri` with `url` as its one exact source (xs=).
std::string with_exact_source(const std::string& uri, const std::string& url) {
  auto m = parse_magnet(uri);
  if (!m) return uri;
  m->exact_sources = {url};
  return to_uri(*m);
}

// True if `inner` is `outer` or lies inside it (both absolute and normal).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto rel = inner.lexically_relative(outer);
  return !rel.empty() && *rel.begin() != "..";
}

int run_publish(const publish_args& a) {
  if (static_cast<int>(a.v1) + static_cast<int>(a.v2) + static_cast<int>(a.hybrid) > 1)
    return usage_error("publish", "choose one of --v1, --v2, --hybrid");
  auto usage = [](const std::string& what) { return usage_error("publish", what); };
  if (!starts_with_http(a.base_url)) {
    return usage("--base-url '" + a.base_url +
                 "' must be an http:// or https:// URL (where DIR is served, e.g. https://example.org/files/)");
  }
  if (!a.torrent_url.empty() && !starts_with_http(a.torrent_url)) {
    return usage("--torrent-url '" + a.torrent_url + "' must be an http:// or https:// URL");
  }
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(fs::absolute(a.dir, ec), ec);
  if (ec || !fs::is_directory(dir, ec)) return usage(a.dir + ": not a folder (publish takes the folder to share)");

  create_options opt;
  opt.version = a.v1 ? torrent_version::v1 : a.v2 ? torrent_version::v2 : torrent_version::hybrid;
  if (!a.piece_size.empty()) {
    auto ps = parse_size(a.piece_size);
    if (!ps) return usage("--piece-size '" + a.piece_size + "' is not a size (try 262144, 256KiB or 1MiB)");
    opt.piece_length = *ps;
  }
  for (const auto& t : a.trackers) {
    if (!t.empty()) opt.tracker_tiers.push_back({t});
  }
  opt.comment = a.comment;
  opt.threads = a.threads;

  const fs::path out = a.out.empty() ? dir / ".torrents" : fs::weakly_canonical(fs::absolute(a.out, ec), ec);
  if (out == dir) return usage("--out must not be the published folder itself (the default is DIR/.torrents)");
  const std::string base = with_slash(a.base_url);
  std::string torrent_base;
  if (!a.torrent_url.empty()) {
    torrent_base = with_slash(a.torrent_url);
  } else if (is_within(out, dir)) {
    torrent_base = base;
    for (const auto& c : out.lexically_relative(dir))
      torrent_base += pct_encode(c.string()) + "/";
  } else {
    return usage("--out " + out.string() +
                 " is outside the published folder: say where it is served with --torrent-url URL");
  }
  const fs::path feed = a.feed.empty() ? out / "feed.xml" : fs::absolute(a.feed, ec);
  const std::string title = a.title.empty() ? dir.filename().string() : a.title;

  fs::create_directories(out, ec);
  if (ec) return fail(out.string() + ": cannot create the output folder: " + ec.message());
  const fs::path state_file = out / state_name;
  std::map<std::string, item> old = load_state(state_file);

  // The options that go into a torrent: when they change, every entry is made again.
  const std::string options_base = fmt::format("{}|{}|{}|{}", version_name(opt.version), opt.piece_length, a.comment,
                                               boost::json::serialize(boost::json::value_from(a.trackers)));

  // Top-level entries, sorted; hidden ones, the output folder and the feed skipped.
  std::vector<fs::directory_entry> entries;
  fs::directory_iterator dit(dir, ec);
  if (ec) return fail(dir.string() + ": " + ec.message());
  for (; dit != fs::directory_iterator(); dit.increment(ec)) {
    if (ec) return fail(dir.string() + ": " + ec.message());
    const std::string name = dit->path().filename().string();
    if (name.empty() || name.front() == '.') continue;
    const fs::path abs = dit->path();
    if (is_within(out, abs) || abs == feed) continue;
    std::error_code sec;
    if (dit->is_symlink(sec)) {
      warn(abs.string() + ": symbolic link skipped (publish the target itself)");
      continue;
    }
    if (!dit->is_regular_file(sec) && !dit->is_directory(sec)) {
      warn(abs.string() + ": not a file or folder, skipped");
      continue;
    }
    entries.push_back(*dit);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& x, const auto& y) { return x.path().filename() < y.path().filename(); });

  std::vector<item> items;
  std::size_t written = 0, reused = 0, failed = 0;
  for (const auto& e : entries) {
    const std::string name = e.path().filename().string();
    const bool folder = e.is_directory(ec);
    auto fp = take_fingerprint(e.path(), folder);
    if (!fp) {
      fmt::print(stderr, "shoal: error: {}\n", printable(fp.err().message()));
      ++failed;
      continue;
    }
    const std::string web_seed = folder ? base : base + pct_encode(name);
    const std::string options = options_base + "|" + web_seed;
    auto prev = old.find(name);
    if (prev != old.end() && prev->second.fingerprint == fp->digest && prev->second.options == options &&
        fs::is_regular_file(out / prev->second.torrent, ec)) {
      items.push_back(prev->second);
      ++reused;
      if (!a.json) fmt::print(stderr, "unchanged {}\n", printable(name));
      continue;
    }
    if (fp->bytes == 0) {
      warn(e.path().string() + ": skipped, nothing to share (no file has any data)");
      continue;
    }
    create_options o = opt;
    o.web_seeds = {web_seed};
    o.creation_date = fp->mtime;  // the same data gives the same .torrent
    progress_bar bar("hashing " + printable(name));
    o.progress = [&](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
    if (!a.json) fmt::print(stderr, "hashing {} ({})\n", printable(name), human_size(fp->bytes));
    auto made = create_torrent(e.path(), o);
    bar.finish();
    if (!made) {
      fmt::print(stderr, "shoal: error: {}\n", printable(made.err().message()));
      ++failed;
      continue;
    }
    auto mi = parse_metainfo(*made);
    if (!mi) return fail("internal error: created torrent does not parse: " + mi.err().message());
    item it;
    it.name = name;
    it.torrent = name + ".torrent";
    it.fingerprint = fp->digest;
    it.options = options;
    it.info_hash = mi->info_hash_v1 ? to_hex(as_view(*mi->info_hash_v1)) : to_hex(as_view(*mi->info_hash_v2));
    it.magnet = to_uri(magnet_from(*mi));
    it.mtime = fp->mtime;
    it.bytes = fp->bytes;
    it.files = fp->files;
    it.rehashed = true;
    if (auto err = write_atomically(out / it.torrent, *made)) {
      fmt::print(stderr, "shoal: error: {}\n", printable(*err));
      ++failed;
      continue;
    }
    items.push_back(std::move(it));
    ++written;
  }

  // Entries gone from DIR (or no longer publishable) leave the feed, and their torrents OUT.
  std::size_t removed = 0;
  for (const auto& [name, it] : old) {
    bool still = std::any_of(items.begin(), items.end(), [&](const item& x) { return x.torrent == it.torrent; });
    if (!still) {
      fs::remove(out / it.torrent, ec);
      ++removed;
      if (!a.json) fmt::print(stderr, "removed {}\n", printable(name));
    }
  }

  // Each magnet link names its .torrent's URL (xs) beside its web seed (ws): a client that
  // finds no peer takes the metadata from the site, then the data from the web seed.
  for (item& it : items)
    it.magnet = with_exact_source(it.magnet, torrent_base + pct_encode(it.torrent));

  boost::json::object entries_json;
  for (const item& it : items)
    entries_json[it.name] = to_json(it);
  boost::json::object state{{"version", state_version}, {"entries", std::move(entries_json)}};
  if (auto err = write_atomically(state_file, boost::json::serialize(state) + "\n")) return fail(*err);

  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (auto err = write_atomically(feed, feed_xml(a, title, base, torrent_base, items, out, now))) return fail(*err);

  if (a.json) {
    boost::json::array list;
    for (const item& it : items) {
      list.emplace_back(boost::json::object{{"name", it.name},
                                            {"torrent", (out / it.torrent).string()},
                                            {"url", torrent_base + pct_encode(it.torrent)},
                                            {"info_hash", it.info_hash},
                                            {"rehashed", it.rehashed}});
    }
    boost::json::object o{{"event", "published"},      {"out", out.string()},
                          {"feed", feed.string()},     {"torrents_written", written},
                          {"torrents_reused", reused}, {"torrents_removed", removed},
                          {"failed", failed},          {"items", std::move(list)}};
    fmt::print("{}\n", plain_json(o));
  } else {
    fmt::print(stderr, "{} torrents ({} written, {} unchanged, {} removed); feed: {}\n", items.size(), written, reused,
               removed, feed.string());
  }
  if (failed > 0) {
    return fail(fmt::format("{} entr{} could not be published (see the errors above); fix them and run again", failed,
                            failed == 1 ? "y" : "ies"));
  }
  return exit_ok;
}

}  // namespace

runner add_publish(CLI::App& app) {
  auto a = std::make_shared<publish_args>();
  app.add_option("DIR", a->dir, "Folder to publish: one torrent per file or folder in it")->required();
  app.add_option("--base-url", a->base_url, "URL where DIR is served over HTTP (the web seed)")->required();
  app.add_option("--out", a->out, "Where to write the torrents and the feed (default: DIR/.torrents)");
  app.add_option("--feed", a->feed, "The RSS 2.0 feed file (default: OUT/feed.xml)");
  app.add_option("--torrent-url", a->torrent_url,
                 "URL where OUT is served (default: base URL + OUT's place in DIR; required when OUT is outside DIR)");
  app.add_option("--title", a->title, "Feed title (default: the folder's name)");
  app.add_option("--description", a->description, "Feed description");
  app.add_flag("--v1", a->v1, "BitTorrent v1 only (BEP 3)");
  app.add_flag("--v2", a->v2, "BitTorrent v2 only (BEP 52)");
  app.add_flag("--hybrid", a->hybrid, "v1 and v2 in one torrent (the default)");
  app.add_option("--piece-size", a->piece_size, "Piece size (256KiB, 1MiB); default: automatic per torrent");
  app.add_option("-t,--tracker", a->trackers, "Tracker URL; repeat for more tiers");
  app.add_option("-c,--comment", a->comment, "Comment in every torrent");
  app.add_option("--threads", a->threads, "Hashing threads (default: one per core)");
  app.add_flag("--json", a->json, "Print a JSON summary (torrents written, reused, the feed's path)");
  return [a] { return run_publish(*a); };
}

}  // namespace shoal::cli
