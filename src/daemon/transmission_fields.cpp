// Transmission's torrent-get fields: each field of a torrent as the spec names, types and
// counts it (status numbers, error codes, kB/s, ratio special values, file priorities),
// read on the network thread from a torrent and its status.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/hash.hpp"
#include "core/magnet.hpp"
#include "core/text.hpp"
#include "daemon/config.hpp"
#include "daemon/rpc_codec.hpp"
#include "daemon/transmission_rpc.hpp"
#include "session/peer_connection.hpp"
#include "storage/file_storage.hpp"

namespace shoal::daemon {

namespace json = boost::json;

// Files a Transmission client sees: the real ones (BEP 47 pad files left out), by index.
std::vector<std::uint32_t> visible_files(const metainfo& m) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 0; i < m.files.size(); ++i)
    if (!m.files[i].pad) out.push_back(i);
  return out;
}

std::uint64_t file_bytes_done(torrent& t, std::uint32_t f) {
  const auto& fs = t.files();
  const auto& fe = fs.files()[f];
  if (fe.size == 0) return 0;
  auto [a, b] = fs.file_pieces(f);
  const auto& have = t.picker().have_bits();
  std::uint64_t done = 0;
  for (std::uint32_t p = a; p < b; ++p) {
    if (!have.get(p)) continue;
    const std::uint64_t ps = static_cast<std::uint64_t>(p) * fs.piece_length();
    const std::uint64_t pe = ps + fs.piece_size(p);
    const std::uint64_t lo = std::max(ps, fe.offset), hi = std::min(pe, fe.offset + fe.size);
    if (hi > lo) done += hi - lo;
  }
  return done;
}

namespace {

// Transmission's torrent status numbers.
enum tr_status : int {
  stopped = 0,
  check_wait = 1,
  check = 2,
  download_wait = 3,
  download = 4,
  seed_wait = 5,
  seed = 6
};

int tr_status_of(const torrent_status& st) {
  switch (st.state) {
    case torrent_state::checking:
      return check;
    case torrent_state::fetching_metadata:
    case torrent_state::downloading:
      return download;
    case torrent_state::seeding:
      return seed;
    case torrent_state::queued:
      if (st.num_pieces > 0 && st.check_progress > 0 && st.check_progress < 1) return check_wait;
      return st.total_wanted > 0 && st.have_wanted >= st.total_wanted ? seed_wait : download_wait;
    case torrent_state::paused:
    case torrent_state::stopped:
    case torrent_state::error:
      return stopped;
  }
  return stopped;
}

// 0 ok, 1 tracker warning, 2 tracker error, 3 local error.
int tr_error_of(const torrent_status& st) {
  switch (st.error_type) {
    case error_kind::none:
      return 0;
    case error_kind::tracker:
      return 2;
    case error_kind::local_io:
    case error_kind::metadata:
      return 3;
  }
  return 0;
}

double tr_ratio(std::uint64_t up, std::uint64_t down) {
  if (down > 0) return static_cast<double>(up) / static_cast<double>(down);
  return up > 0 ? -2.0 : -1.0;  // TR_RATIO_INF, TR_RATIO_NA
}

int tr_priority(std::uint8_t p) {
  if (p == 0) return 0;
  if (p <= 2) return -1;
  return p >= 6 ? 1 : 0;
}

std::string host_of(const std::string& url) {
  auto p = url.find("://");
  if (p == std::string::npos) return url;
  auto rest = url.substr(p + 3);
  auto end = rest.find_first_of("/?");
  return rest.substr(0, end);
}

std::uint8_t engine_prio(const torrent& t, std::uint32_t f) {
  const auto& p = t.file_priorities();
  return f < p.size() ? p[f] : prio_normal;
}

}  // namespace

json::value torrent_field(const torrent_view& v, std::string_view name, const daemon_config& cfg) {
  const auto& st = v.st;
  auto& t = v.t;
  const bool meta = t.has_metadata();
  const std::uint64_t size_when_done = st.total_wanted;
  const std::uint64_t left = st.total_wanted > st.have_wanted ? st.total_wanted - st.have_wanted : 0;
  const bool running = st.state == torrent_state::downloading || st.state == torrent_state::seeding ||
                       st.state == torrent_state::fetching_metadata;
  if (name == "id") return st.id;
  if (name == "name") return json::string(st.name);
  if (name == "hashString") return json::string(to_hex(as_view(st.info_hash)));
  if (name == "status") return tr_status_of(st);
  if (name == "error") return tr_error_of(st);
  if (name == "errorString") return json::string(st.error_type == error_kind::tracker ? st.tracker_message : st.error);
  if (name == "totalSize") return st.total_size;
  if (name == "sizeWhenDone") return size_when_done;
  if (name == "leftUntilDone") return left;
  if (name == "haveValid") return st.have_wanted;
  if (name == "haveUnchecked") return 0;
  if (name == "desiredAvailable") return left;
  if (name == "percentDone")
    return size_when_done ? static_cast<double>(size_when_done - left) / static_cast<double>(size_when_done) : 0.0;
  if (name == "percentComplete") return st.num_pieces ? static_cast<double>(st.pieces_have) / st.num_pieces : 0.0;
  if (name == "sequential_download") return st.sequential;
  if (name == "bytes_completed") {
    json::array a;
    if (meta)
      for (auto f : visible_files(t.info()))
        a.emplace_back(file_bytes_done(t, f));
    return a;
  }
  if (name == "metadataPercentComplete") return meta ? 1.0 : 0.0;
  if (name == "recheckProgress") return st.state == torrent_state::checking ? st.check_progress : 0.0;
  if (name == "isFinished") return st.state == torrent_state::paused && st.total_wanted > 0 && left == 0;
  if (name == "isStalled") return running && st.download_rate == 0 && st.upload_rate == 0;
  if (name == "isPrivate") return meta && t.info().is_private;
  if (name == "rateDownload") return static_cast<std::int64_t>(st.download_rate);
  if (name == "rateUpload") return static_cast<std::int64_t>(st.upload_rate);
  if (name == "eta") {
    if (st.state != torrent_state::downloading || st.download_rate < 1) return -1;
    return static_cast<std::int64_t>(static_cast<double>(left) / st.download_rate);
  }
  if (name == "etaIdle") return -1;
  if (name == "uploadedEver") return st.total_uploaded;
  if (name == "downloadedEver") return st.total_downloaded;
  if (name == "corruptEver") return st.wasted;
  if (name == "uploadRatio")
    return tr_ratio(st.total_uploaded, st.total_downloaded ? st.total_downloaded : st.have_wanted);
  if (name == "addedDate") return st.added_time;
  if (name == "doneDate") return st.completed_time;
  if (name == "activityDate") return running ? v.now : 0;
  if (name == "startDate") return running ? v.now - st.active_seconds : 0;
  if (name == "editDate") return 0;
  if (name == "dateCreated") return meta ? t.info().creation_date.value_or(0) : 0;
  if (name == "secondsDownloading") return std::max<std::int64_t>(0, st.active_seconds - st.seeding_seconds);
  if (name == "secondsSeeding") return st.seeding_seconds;
  if (name == "comment") return json::string(meta ? t.info().comment : "");
  if (name == "creator") return json::string(meta ? t.info().created_by : "");
  if (name == "source") return json::string(meta ? t.info().source : "");
  if (name == "downloadDir") return json::string(st.save_path);
  if (name == "downloadLimit") return st.max_download_rate / 1000;
  if (name == "downloadLimited") return st.max_download_rate > 0;
  if (name == "uploadLimit") return st.max_upload_rate / 1000;
  if (name == "uploadLimited") return st.max_upload_rate > 0;
  if (name == "honorsSessionLimits") return true;
  if (name == "bandwidthPriority") return 0;
  if (name == "peer-limit" || name == "maxConnectedPeers") return cfg.peer_limit_per_torrent;
  if (name == "peersConnected") return st.peers;
  if (name == "peersSendingToUs" || name == "peersGettingFromUs" || name == "webseedsSendingToUs") {
    std::uint32_t n = 0;
    if (name == "webseedsSendingToUs") return st.web_seeds;
    for (const auto& p : t.peers()) {
      if (name == "peersSendingToUs" ? p->download_rate() > 0 : p->upload_rate() > 0) ++n;
    }
    return n;
  }
  if (name == "peersFrom") {
    json::object o;
    for (const char* k : {"fromCache", "fromDht", "fromIncoming", "fromLpd", "fromLtep", "fromPex", "fromTracker"})
      o[k] = 0;
    std::uint32_t in = 0;
    for (const auto& p : t.peers())
      if (!p->is_outgoing()) ++in;
    o["fromIncoming"] = in;
    o["fromTracker"] = st.peers - in;
    return o;
  }
  if (name == "queuePosition") return st.queue_position;
  if (name == "labels") {
    json::array a;
    for (const auto& l : st.labels)
      a.emplace_back(l);
    return a;
  }
  if (name == "magnetLink") {
    if (meta) return json::string(to_uri(magnet_from(t.info())));
    return json::string("magnet:?xt=urn:btih:" + to_hex(as_view(st.info_hash)));
  }
  if (name == "pieceCount") return st.num_pieces;
  if (name == "pieceSize") return meta ? t.info().piece_length : 0;
  if (name == "pieces") {
    if (!meta) return json::string("");
    const auto& have = t.picker().have_bits();
    std::string bits((st.num_pieces + 7) / 8, '\0');
    for (std::uint32_t p = 0; p < st.num_pieces; ++p)
      if (have.get(p)) bits[p / 8] = static_cast<char>(bits[p / 8] | (0x80 >> (p % 8)));
    return json::string(base64_encode(bits));
  }
  if (name == "seedRatioLimit") return st.goals.ratio.value_or(cfg.seed_ratio_limit);
  if (name == "seedRatioMode") {
    if (!st.goals.ratio) return cfg.seed_ratio_limited ? 2 : 0;
    return cfg.seed_ratio_limited && *st.goals.ratio == cfg.seed_ratio_limit ? 0 : 1;
  }
  if (name == "seedIdleLimit") {
    return st.goals.idle_time ? st.goals.idle_time->count() / 60 : static_cast<std::int64_t>(cfg.idle_seeding_limit);
  }
  if (name == "seedIdleMode") {
    if (!st.goals.idle_time) return cfg.idle_seeding_limit_enabled ? 2 : 0;
    return 1;
  }
  if (name == "webseeds") {
    json::array a;
    if (meta)
      for (const auto& w : t.info().web_seeds)
        a.emplace_back(w);
    return a;
  }
  if (name == "file-count") return meta ? visible_files(t.info()).size() : 0;
  if (name == "files" || name == "fileStats" || name == "priorities" || name == "wanted") {
    json::array a;
    if (!meta) return a;
    for (auto f : visible_files(t.info())) {
      const auto& fe = t.info().files[f];
      const auto prio = engine_prio(t, f);
      if (name == "files" || name == "fileStats") {
        json::object o;
        o["bytesCompleted"] = file_bytes_done(t, f);
        if (name == "files") {
          o["length"] = fe.size;
          o["name"] = t.file_name(f);
        } else {
          o["wanted"] = prio > 0;
          o["priority"] = tr_priority(prio);
        }
        a.emplace_back(std::move(o));
      } else if (name == "priorities") {
        a.emplace_back(tr_priority(prio));
      } else {
        a.emplace_back(prio > 0 ? 1 : 0);
      }
    }
    return a;
  }
  if (name == "peers") {
    json::array a;
    for (const auto& p : t.peers()) {
      if (p->closed()) continue;
      json::object o;
      const auto& ep = p->endpoint();
      auto addr = ep.address();
      if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
      o["address"] = addr.to_string();
      o["port"] = ep.port();
      o["clientName"] = p->client();
      o["clientIsChoked"] = p->peer_choking();
      o["clientIsInterested"] = p->am_interested();
      o["peerIsChoked"] = p->am_choking();
      o["peerIsInterested"] = p->peer_interested();
      o["isDownloadingFrom"] = !p->peer_choking() && p->am_interested();
      o["isUploadingTo"] = !p->am_choking() && p->peer_interested();
      o["isEncrypted"] = p->encrypted();
      o["isIncoming"] = !p->is_outgoing();
      o["isUTP"] = std::string_view(p->transport()) == "utp";
      const auto& h = p->has();
      o["progress"] = h.size() ? static_cast<double>(h.count()) / static_cast<double>(h.size()) : 0.0;
      o["rateToClient"] = static_cast<std::int64_t>(p->download_rate());
      o["rateToPeer"] = static_cast<std::int64_t>(p->upload_rate());
      std::string flags;
      if (!p->peer_choking() && p->am_interested()) flags += 'D';
      if (!p->am_choking() && p->peer_interested()) flags += 'U';
      if (p->encrypted()) flags += 'E';
      if (!p->is_outgoing()) flags += 'I';
      if (std::string_view(p->transport()) == "utp") flags += 'T';
      o["flagStr"] = flags;
      a.emplace_back(std::move(o));
    }
    return a;
  }
  if (name == "trackers" || name == "trackerStats") {
    std::vector<std::pair<std::string, int>> list;
    if (meta && !t.info().tracker_tiers.empty()) {
      for (std::size_t tier = 0; tier < t.info().tracker_tiers.size(); ++tier)
        for (const auto& u : t.info().tracker_tiers[tier])
          list.emplace_back(u, static_cast<int>(tier));
    } else {
      for (std::size_t i = 0; i < st.trackers.size(); ++i)
        list.emplace_back(st.trackers[i], static_cast<int>(i));
    }
    std::map<std::string, tracker_state> said;
    if (name == "trackerStats") {
      for (auto& ts : t.tracker_states())
        said.emplace(ts.url, std::move(ts));
    }
    json::array a;
    int id = 0;
    for (const auto& [url, tier] : list) {
      json::object o;
      o["announce"] = url;
      o["id"] = id++;
      o["tier"] = tier;
      std::string scrape = url;
      if (auto p = scrape.rfind("/announce"); p != std::string::npos) scrape.replace(p, 9, "/scrape");
      o["scrape"] = scrape;
      if (name == "trackerStats") {
        const auto it = said.find(url);
        const tracker_state ts = it == said.end() ? tracker_state{} : it->second;
        const bool asked = ts.last_announce != 0;
        o["host"] = host_of(url);
        o["announceState"] = running ? (ts.next_announce ? 1 : 0) : 0;  // 1: waiting for the next
        const bool scraped = ts.last_scrape != 0;
        o["scrapeState"] = 1;  // waiting for the next (the session scrapes every torrent)
        o["downloadCount"] = ts.downloaded;
        o["hasAnnounced"] = asked;
        o["hasScraped"] = scraped;
        o["isBackup"] = false;
        o["lastAnnouncePeerCount"] = ts.last_peers;
        o["lastAnnounceResult"] = ts.last_result;
        o["lastAnnounceStartTime"] = ts.last_announce;
        o["lastAnnounceSucceeded"] = ts.last_ok;
        o["lastAnnounceTime"] = ts.last_announce;
        o["lastAnnounceTimedOut"] = asked && !ts.last_ok && ts.last_result.find("timed out") != std::string::npos;
        o["lastScrapeResult"] = ts.scrape_result;
        o["lastScrapeStartTime"] = scraped ? ts.last_scrape : 0;
        o["lastScrapeSucceeded"] = ts.scrape_ok;
        o["lastScrapeTime"] = scraped ? ts.last_scrape : 0;
        o["lastScrapeTimedOut"] = scraped && !ts.scrape_ok &&
                                  (ts.scrape_result.find("no answer") != std::string::npos ||
                                   ts.scrape_result.find("timeout") != std::string::npos);
        o["leecherCount"] = ts.leechers;
        o["seederCount"] = ts.seeders;
        o["nextAnnounceTime"] = ts.next_announce;
        o["nextScrapeTime"] = ts.next_scrape;
      }
      a.emplace_back(std::move(o));
    }
    return a;
  }
  if (name == "torrentFile") return json::string("");
  if (name == "primary-mime-type") return json::string("application/octet-stream");
  if (name == "manualAnnounceTime") return -1;
  return nullptr;  // unknown fields: left out by the caller
}

}  // namespace shoal::daemon
