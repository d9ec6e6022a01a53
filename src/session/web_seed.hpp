// A web seed (BEP 19, `url-list`): an HTTP(S) server holding the torrent's files, used
// like a peer that has every piece. One coroutine per URL on the network thread takes
// pieces from the picker (runs of whole consecutive pieces, up to `max_run` bytes), fetches
// them with HTTP/1.1 range requests over a kept-alive connection (directly, from the bound
// address, or through the proxy, as trackers do), and hands the bytes to the torrent as
// blocks, which are hash-checked and written like a peer's. A server that ignores ranges
// (200 with the whole file) is read from the start once, every piece it covers that nobody
// else has started taken on the way. Errors (connection, 404, 5xx) back the seed off (5 s
// doubling to 5 minutes, or Retry-After); pieces failing the hash count against it, and
// after `max_hash_failures` it is dropped.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "session/piece_picker.hpp"
#include "session/web_seed_codec.hpp"

namespace shoal {

class session;
class torrent;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class web_seed : public std::enable_shared_from_this<web_seed> {
 public:
  // Bytes asked for at once: about `run_seconds` of the seed's measured rate, at least one
  // piece (what the picker hands out), at most max_run; a slow seed does not sit on pieces
  // peers could send sooner.
  static constexpr std::uint64_t max_run = 4u << 20;
  static constexpr std::uint64_t first_run = 1u << 20;
  static constexpr double run_seconds = 3.0;
  static constexpr std::uint32_t max_hash_failures = 3;
  static constexpr std::uint32_t max_redirects = 5;
  static constexpr std::chrono::seconds first_backoff{5};
  static constexpr std::chrono::seconds max_backoff{300};

  // `id` stands for the seed where the torrent records who sent a block (smart ban).
  web_seed(session& s, std::shared_ptr<torrent> t, std::string url, tcp::endpoint id);
  ~web_seed();

  void start();
  // Ends the coroutine soon; blocks it had asked for go back to the picker.
  void stop();

  [[nodiscard]] const std::string& url() const { return url_; }
  [[nodiscard]] const tcp::endpoint& id() const { return id_; }
  [[nodiscard]] bool active() const { return !stopped_; }
  // Dropped for sending data that failed the hash check.
  [[nodiscard]] bool dropped() const { return dropped_; }
  [[nodiscard]] std::uint64_t downloaded() const { return downloaded_; }
  // A piece with a block from this seed failed its hash check.
  void hash_failed(std::uint32_t piece);

 private:
  struct connection;
  struct fetch_error {
    std::string why;
    std::optional<std::chrono::seconds> retry_after;
  };
  static asio::awaitable<void> run(std::shared_ptr<web_seed> self);
  asio::awaitable<void> body();
  void claim(torrent& t, std::vector<block_ref>& run);
  asio::awaitable<std::optional<fetch_error>> fetch_run(torrent& t, const std::vector<block_ref>& run);
  // A 200 reply to a range request: the whole file from its start. Takes the bytes of `r`
  // into `dest` (calling `progress` with the count so far), and on the way every piece
  // wholly inside the file that nobody has started; stops once nothing ahead is free.
  asio::awaitable<std::optional<fetch_error>> read_whole_file(
      torrent& t, boost::beast::http::response_parser<boost::beast::http::buffer_body>& parser, bool keep,
      const web_seed_codec::range_request& r, char* dest, std::function<void(std::uint64_t)> progress);
  void give_back(torrent& t);
  void deliver(torrent& t, const block_ref& b, std::string_view data);
  void log(const std::string& line) const;

  session& session_;
  std::weak_ptr<torrent> torrent_;
  std::string url_;
  tcp::endpoint id_;
  bool stopped_ = false;
  bool dropped_ = false;
  bool ranges_ignored_ = false;  // the server answered a range request with the whole file
  std::uint32_t hash_failures_ = 0;
  std::uint64_t downloaded_ = 0;
  std::uint64_t run_target_ = first_run;
  std::vector<block_ref> outstanding_;  // asked of the picker, not delivered yet
  std::unique_ptr<connection> conn_;
  asio::steady_timer timer_;
};

}  // namespace shoal
