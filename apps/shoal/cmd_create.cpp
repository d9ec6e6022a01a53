#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "live_display.hpp"
#include "storage/creator.hpp"

namespace shoal::cli {

namespace {

struct create_args {
  std::string path;
  bool v1 = false, v2 = false, hybrid = false;
  std::string piece_size;
  int piece_exp = 0;  // -l N: 2^N bytes, as mktorrent
  std::string name;
  std::vector<std::string> exclude;
  bool include_hidden = false;
  bool follow_symlinks = false;
  std::vector<std::string> trackers;
  std::vector<std::string> web_seeds;
  bool is_private = false;
  std::string comment;
  std::string source;
  std::string output;
  unsigned threads = 0;
  bool no_date = false;
  bool force = false;
  bool json = false;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int run_create(const create_args& a) {
  create_options opt;
  if (static_cast<int>(a.v1) + static_cast<int>(a.v2) + static_cast<int>(a.hybrid) > 1)
    return usage_error("create", "choose one of --v1, --v2, --hybrid");
  opt.version = a.v1 ? torrent_version::v1 : a.v2 ? torrent_version::v2 : torrent_version::hybrid;
  if (!a.piece_size.empty() && a.piece_exp != 0)
    return usage_error("create", "give the piece size once: --piece-size or -l, not both");
  if (a.piece_exp != 0) opt.piece_length = std::uint64_t{1} << a.piece_exp;
  if (!a.piece_size.empty()) {
    auto ps = parse_size(a.piece_size);
    if (!ps) {
      return usage_error("create", "--piece-size '" + a.piece_size + "' is not a size (try 262144, 256KiB or 1MiB)");
    }
    if (*ps < 16 * 1024 || *ps > max_piece_length || (*ps & (*ps - 1)) != 0) {
      return usage_error(
          "create", "--piece-size: piece size " + std::to_string(*ps) + " must be a power of two from 16 KiB to 1 GiB");
    }
    opt.piece_length = *ps;
  }
  for (const auto& t : a.trackers) {
    auto tier = split_commas(t);
    if (!tier.empty()) opt.tracker_tiers.push_back(std::move(tier));
  }
  opt.web_seeds = a.web_seeds;
  opt.is_private = a.is_private;
  opt.comment = a.comment;
  opt.source = a.source;
  opt.threads = a.threads;
  opt.name = a.name;
  opt.exclude = a.exclude;
  opt.include_hidden = a.include_hidden;
  opt.follow_symlinks = a.follow_symlinks;
  opt.warning = [](const std::string& w) { warn(w); };
  if (a.no_date) opt.creation_date = -1;

  progress_bar bar("hashing");
  if (!a.json) opt.progress = [&](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
  auto made = create_torrent(a.path, opt);
  bar.finish();
  if (!made) return fail(made.err().message());

  // Read back what we wrote: the magnet link and hashes come from the parsed file.
  auto mi = parse_metainfo(*made);
  if (!mi) return fail("internal error: created torrent does not parse: " + mi.err().message());

  std::filesystem::path out =
      a.output.empty() ? std::filesystem::path(mi->name + ".torrent") : std::filesystem::path(a.output);
  std::error_code ec;
  if (!a.force && std::filesystem::exists(out, ec)) {
    return fail(out.string() + " already exists (use --force to replace it, or -o to choose another name)");
  }
  // Atomic replace: write a temporary file beside the target, then rename over it.
  std::filesystem::path tmp = out;
  tmp += ".part." + std::to_string(::getpid());
  {
    errno = 0;
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(made->data(), static_cast<std::streamsize>(made->size()));
    f.flush();
    if (!f) {
      const int err = errno ? errno : EIO;  // the failed open(2) or write(2)
      std::filesystem::remove(tmp, ec);
      return fail_errno(out.string() + ": cannot write the torrent file", err);
    }
  }
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return fail(out.string() + ": " + ec.message());
  }

  const std::string magnet = to_uri(magnet_from(*mi));
  if (a.json) {
    boost::json::object o;
    o["event"] = "created";
    o["torrent"] = out.string();
    o["name"] = mi->name;
    o["version"] = std::string(version_name(mi->version));
    o["info_hash_v1"] = mi->info_hash_v1 ? boost::json::value(to_hex(as_view(*mi->info_hash_v1))) : nullptr;
    o["info_hash_v2"] = mi->info_hash_v2 ? boost::json::value(to_hex(as_view(*mi->info_hash_v2))) : nullptr;
    o["piece_size"] = mi->piece_length;
    o["piece_count"] = mi->num_pieces;
    o["total_size"] = mi->total_size;
    o["magnet"] = magnet;
    fmt::print("{}\n", plain_json(o));
  } else {
    fmt::print(stderr, "wrote {} ({}, {} pieces of {})\n", out.string(), version_name(mi->version), mi->num_pieces,
               human_size(mi->piece_length));
    fmt::print("{}\n", magnet);
  }
  return exit_ok;
}

}  // namespace

runner add_create(CLI::App& app) {
  auto a = std::make_shared<create_args>();
  app.add_option("PATH", a->path, "File or folder to share; the torrent's name is its last component")->required();
  app.add_flag("--v1", a->v1, "BitTorrent v1 only (BEP 3)");
  app.add_flag("--v2", a->v2, "BitTorrent v2 only (BEP 52)");
  app.add_flag("--hybrid", a->hybrid, "v1 and v2 in one torrent (the default)");
  app.add_option("-l,--piece-length", a->piece_exp,
                 "Piece size as a power of two, as mktorrent: 18 means 2^18 bytes (256 KiB); 14 to 30")
      ->check(CLI::Range(14, 30))
      ->default_str("");
  app.add_option("--piece-size", a->piece_size,
                 "Piece size in bytes or with a suffix (256KiB, 1MiB): a power of two from 16KiB to 1GiB; "
                 "default: automatic");
  app.add_option("-t,-a,--tracker,--announce", a->trackers,
                 "Tracker URL; repeat for more tiers, separate backups within a tier with commas")
      ->default_str("");
  app.add_option("-w,--web-seed", a->web_seeds, "Web seed URL (BEP 19); repeatable")->default_str("");
  app.add_flag("-p,--private", a->is_private, "Private torrent (BEP 27): trackers only, no DHT or PEX");
  app.add_option("-c,--comment", a->comment, "Comment");
  app.add_option("-s,--source", a->source, "Source tag inside the info dictionary (changes the info-hash)");
  app.add_option("-n,--name", a->name, "The torrent's name (default: the last component of PATH)");
  app.add_option("--exclude", a->exclude,
                 "Leave out files and folders whose path below PATH or whose name matches this glob "
                 "(e.g. '*.log', 'build/*'); repeatable");
  app.add_flag("--include-hidden", a->include_hidden,
               "Keep hidden files and folders (names starting with a dot), left out by default; junk "
               "(.DS_Store, Thumbs.db, desktop.ini, *.swp, *~) is always left out");
  app.add_flag("--follow-symlinks", a->follow_symlinks,
               "Read through symlinks (linked folders are entered); by default a v2 or hybrid torrent "
               "stores them as symlinks (BEP 47) and a v1 torrent leaves them out");
  app.add_option("-o,--output", a->output, "Where to write the .torrent (default: NAME.torrent)")->default_str("");
  app.add_option("--threads", a->threads, "Hashing threads (0: one per core)");
  app.add_flag("--no-date", a->no_date, "Leave out the creation date (reproducible output)");
  app.add_flag("-f,--force", a->force, "Replace the output file if it exists");
  app.add_flag("--json", a->json, "Print a JSON summary instead of the magnet link");
  return [a] { return run_create(*a); };
}

}  // namespace shoal::cli
