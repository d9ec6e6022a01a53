// Fetches a torrent's info dictionary from peers (BEP 9) for a magnet link: connects to
// the given peers at once, asks each for the metadata over ut_metadata, and returns the
// first complete copy whose hash matches the link's info-hash.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "net/proxy_codec.hpp"
#include "wire/message.hpp"

namespace shoal {

struct metadata_fetch_params {
  sha1_digest wire_hash{};        // what the handshake carries
  std::optional<sha1_digest> v1;  // check the metadata against these
  std::optional<sha256_digest> v2;
  wire::peer_id id{};
  std::vector<boost::asio::ip::tcp::endpoint> peers;
  // Peers found while the fetch runs (DHT, trackers) are appended here by their finders;
  // with it, the fetch waits for more until the timeout instead of giving up when the
  // known peers are exhausted.
  std::shared_ptr<std::vector<boost::asio::ip::tcp::endpoint>> incoming;
  // With `incoming`: the finders have given up (true) and nothing is left to try: stop
  // before the timeout.
  std::function<bool()> finders_done;
  std::chrono::seconds timeout{120};
  std::string client_name = "shoal 0.1.0";
  std::function<void(const std::string&)> log;  // optional progress lines
  net::proxy_settings proxy;                    // peers are dialled through it when set
};

[[nodiscard]] boost::asio::awaitable<result<std::string>> fetch_metadata(boost::asio::io_context& io,
                                                                         const metadata_fetch_params& p);

// The .torrent bytes for verified metadata: the info dictionary as received, plus trackers.
[[nodiscard]] std::string torrent_from_metadata(const std::string& info, const std::vector<std::string>& trackers);

}  // namespace shoal
