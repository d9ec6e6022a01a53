#include <fmt/core.h>

#include <boost/json.hpp>
#include <ctime>

#include "commands.hpp"
#include "console.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"
#include "live_display.hpp"
#include "source.hpp"

namespace shoal::cli {

namespace {

struct info_args {
  std::string target;
  bool json = false;
};

std::string utc_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (::gmtime_r(&tt, &tm) == nullptr) return std::to_string(t);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

boost::json::value hex_or_null(const auto& digest) {
  if (!digest) return nullptr;
  return boost::json::value(to_hex(as_view(*digest)));
}

int show_magnet(const std::string& uri, bool json) {
  auto m = parse_magnet(uri);
  if (!m) return fail(m.err().message());
  std::string name = m->name.empty() ? std::string() : sanitize_component(m->name).value_or("_");
  if (json) {
    boost::json::object o;
    o["event"] = "info";
    o["type"] = "magnet";
    o["name"] = name;
    o["info_hash_v1"] = hex_or_null(m->info_hash_v1);
    o["info_hash_v2"] = hex_or_null(m->info_hash_v2);
    boost::json::array tr, ws, xs, pe, so;
    for (const auto& t : m->trackers)
      tr.emplace_back(t);
    for (const auto& w : m->web_seeds)
      ws.emplace_back(w);
    for (const auto& x : m->exact_sources)
      xs.emplace_back(x);
    for (const auto& p : m->peers)
      pe.emplace_back(p);
    for (auto [a, b] : m->select_only)
      so.emplace_back(boost::json::array{a, b});
    o["trackers"] = std::move(tr);
    o["web_seeds"] = std::move(ws);
    o["exact_sources"] = std::move(xs);
    o["peers"] = std::move(pe);
    o["select_only"] = std::move(so);
    o["magnet"] = to_uri(*m);
    fmt::print("{}\n", plain_json(o));
    return exit_ok;
  }
  fmt::print("Name:         {}\n", name.empty() ? "(not given)" : printable(name));
  if (m->info_hash_v1) fmt::print("Info-hash v1: {}\n", to_hex(as_view(*m->info_hash_v1)));
  if (m->info_hash_v2) fmt::print("Info-hash v2: {}\n", to_hex(as_view(*m->info_hash_v2)));
  fmt::print("Version:      {}\n", m->info_hash_v1 && m->info_hash_v2 ? "hybrid" : m->info_hash_v2 ? "v2" : "v1");
  if (!m->trackers.empty()) {
    fmt::print("\nTrackers:\n");
    for (const auto& t : m->trackers)
      fmt::print("  {}\n", printable(t));
  }
  if (!m->web_seeds.empty()) {
    fmt::print("\nWeb seeds:\n");
    for (const auto& w : m->web_seeds)
      fmt::print("  {}\n", printable(w));
  }
  if (!m->exact_sources.empty()) {
    fmt::print("\nExact sources (the .torrent's URLs):\n");
    for (const auto& x : m->exact_sources)
      fmt::print("  {}\n", printable(x));
  }
  if (!m->peers.empty()) {
    fmt::print("\nPeers:\n");
    for (const auto& p : m->peers)
      fmt::print("  {}\n", printable(p));
  }
  return exit_ok;
}

int show_torrent(const std::string& file, bool json) {
  fetch_options fetch;
  fetch.local = env_local();
  auto r = load_torrent(file, fetch);
  if (!r) return fail(file + ": " + r.err().message());
  const metainfo& m = *r;
  for (const auto& w : m.warnings)
    warn(file + ": " + w);
  const std::string magnet = to_uri(magnet_from(m));
  std::size_t real_files = 0;
  for (const auto& f : m.files)
    real_files += f.pad ? 0 : 1;

  if (json) {
    boost::json::object o;
    o["event"] = "info";
    o["type"] = "torrent";
    o["name"] = m.name;
    o["info_hash_v1"] = hex_or_null(m.info_hash_v1);
    o["info_hash_v2"] = hex_or_null(m.info_hash_v2);
    o["version"] = std::string(version_name(m.version));
    o["total_size"] = m.total_size;
    o["piece_size"] = m.piece_length;
    o["piece_count"] = m.num_pieces;
    o["private"] = m.is_private;
    o["created_by"] = m.created_by;
    o["creation_date"] = m.creation_date ? boost::json::value(*m.creation_date) : nullptr;
    o["comment"] = m.comment;
    o["source"] = m.source;
    boost::json::array tiers;
    for (const auto& t : m.tracker_tiers) {
      boost::json::array tier;
      for (const auto& u : t)
        tier.emplace_back(u);
      tiers.emplace_back(std::move(tier));
    }
    o["trackers"] = std::move(tiers);
    boost::json::array ws;
    for (const auto& w : m.web_seeds)
      ws.emplace_back(w);
    o["web_seeds"] = std::move(ws);
    boost::json::array files, pads;
    std::size_t index = 0;
    for (const auto& f : m.files) {
      if (f.pad) {
        pads.emplace_back(boost::json::object{{"path", f.path}, {"size", f.size}, {"offset", f.offset}});
        continue;
      }
      boost::json::object fo;
      fo["index"] = ++index;  // as --select-file takes it: 1-based, pad files not counted
      fo["path"] = f.path;
      fo["size"] = f.size;
      fo["offset"] = f.offset;
      if (f.executable) fo["executable"] = true;
      if (f.hidden) fo["hidden"] = true;
      if (f.symlink) fo["symlink_target"] = f.symlink_target;
      files.emplace_back(std::move(fo));
    }
    o["files"] = std::move(files);
    o["pad_files"] = std::move(pads);  // BEP 47 pad files of the v1 file list
    o["magnet"] = magnet;
    boost::json::array warnings;
    for (const auto& w : m.warnings)
      warnings.emplace_back(w);
    o["warnings"] = std::move(warnings);
    fmt::print("{}\n", plain_json(o));
    return exit_ok;
  }

  fmt::print("Name:         {}\n", printable(m.name));
  if (m.info_hash_v1) fmt::print("Info-hash v1: {}\n", to_hex(as_view(*m.info_hash_v1)));
  if (m.info_hash_v2) fmt::print("Info-hash v2: {}\n", to_hex(as_view(*m.info_hash_v2)));
  fmt::print("Version:      {}\n", version_name(m.version));
  fmt::print("Total size:   {} ({} bytes)\n", human_size(m.total_size), m.total_size);
  fmt::print("Piece size:   {} ({} bytes)\n", human_size(m.piece_length), m.piece_length);
  fmt::print("Pieces:       {}\n", m.num_pieces);
  fmt::print("Private:      {}\n", m.is_private ? "yes" : "no");
  if (!m.created_by.empty()) fmt::print("Created by:   {}\n", printable(m.created_by));
  if (m.creation_date) fmt::print("Created on:   {}\n", utc_time(*m.creation_date));
  if (!m.comment.empty()) fmt::print("Comment:      {}\n", printable(m.comment));
  if (!m.source.empty()) fmt::print("Source:       {}\n", printable(m.source));
  fmt::print("\nTrackers:\n");
  if (m.tracker_tiers.empty()) fmt::print("  (none)\n");
  for (std::size_t i = 0; i < m.tracker_tiers.size(); ++i) {
    for (std::size_t j = 0; j < m.tracker_tiers[i].size(); ++j) {
      if (j == 0)
        fmt::print("  Tier {}: {}\n", i + 1, printable(m.tracker_tiers[i][j]));
      else
        fmt::print("  {:>{}} {}\n", "", fmt::formatted_size("Tier {}:", i + 1), printable(m.tracker_tiers[i][j]));
    }
  }
  if (!m.web_seeds.empty()) {
    fmt::print("\nWeb seeds:\n");
    for (const auto& w : m.web_seeds)
      fmt::print("  {}\n", printable(w));
  }
  // Numbered as `download --select-file` takes them: from 1, pad files not counted.
  fmt::print("\nFiles ({}):\n", real_files);
  const auto width = fmt::formatted_size("{}", real_files);
  std::size_t index = 0;
  for (const auto& f : m.files) {
    if (f.pad) continue;
    std::string flags;
    if (f.executable) flags += " [executable]";
    if (f.hidden) flags += " [hidden]";
    if (f.symlink) flags += " -> " + printable(f.symlink_target);
    fmt::print("  {:>{}}  {} ({}){}\n", ++index, width, printable(f.path), human_size(f.size), flags);
  }
  fmt::print("\nMagnet: {}\n", magnet);
  return exit_ok;
}

}  // namespace

runner add_info(CLI::App& app) {
  auto a = std::make_shared<info_args>();
  app.add_option("TORRENT", a->target, "A .torrent file, its http(s):// URL, or a magnet link")->required();
  app.add_flag("--json", a->json, "Print the facts as one JSON object");
  return [a] {
    if (is_magnet(a->target)) return show_magnet(a->target, a->json);
    return show_torrent(a->target, a->json);
  };
}

}  // namespace shoal::cli
