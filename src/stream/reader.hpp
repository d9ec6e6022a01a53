// Reading a torrent's file while it downloads. A reader's position steers the session's
// picker (the piece under it first, the file's first and last pieces early, then a
// readahead window sized from the rate it is read at, the rest rarest first); a read waits
// for the piece it needs instead of failing. Readers are used from any thread's
// coroutines: the session's work is posted to its network thread and the answer comes
// back on the caller's executor.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "session/session.hpp"

namespace shoal::stream {

namespace asio = boost::asio;

struct file_entry {
  std::uint32_t index = 0;  // as metainfo lists the files (pad files included)
  std::string path;         // beneath the torrent's save folder, '/' separated
  std::uint64_t size = 0;
  bool pad = false;
};

// From any thread (a trip to the network thread).
// The torrent named by its info-hash in hex: the v1 hash (40 digits), or the v2 hash (64
// digits, or its first 40); nullopt if the session has none.
[[nodiscard]] std::optional<torrent_id> find_torrent(session& s, std::string_view hex);
// Its files; nullopt for no such torrent or one without metadata yet.
[[nodiscard]] std::optional<std::vector<file_entry>> list_files(session& s, torrent_id t);
// The info-hash a stream URL names a torrent by: the v1 hash in hex, or the v2 hash for
// v2-only torrents (64 digits). Empty for no such torrent.
[[nodiscard]] std::string url_hash(session& s, torrent_id t);

// File `file`'s verified byte ranges [begin, end), in order (a player's buffer bar); no
// reader is opened, so nothing becomes urgent or wanted. Empty for no such torrent or file.
[[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> have_ranges(session& s, torrent_id t,
                                                                               std::uint32_t file);

class file_reader : public std::enable_shared_from_this<file_reader> {
 public:
  // Registers a reader of file `file` (from any thread): nullptr if the torrent has no such
  // file, no metadata yet, or already has torrent::max_stream_readers readers. A file the
  // user skipped (priority 0) becomes wanted again.
  [[nodiscard]] static std::shared_ptr<file_reader> open(session& s, torrent_id t, std::uint32_t file);
  ~file_reader();
  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;

  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::uint32_t file() const { return file_; }

  // Reads up to `max` bytes (at most one piece's worth: fewer may come) at `offset` of the
  // file, once they are downloaded and verified, on the calling coroutine's executor. At
  // or past the end: an empty string. Errors: the torrent was removed or failed
  // (operation_canceled / io_error), too many reads are waiting (resource_unavailable_try_again),
  // or the reader was dropped while the read waited (operation_canceled: a reader's reads do
  // not keep it alive, so a client that goes away frees its waits by dropping the reader).
  // The caller's executor must outlive the read: its answer is posted there.
  asio::awaitable<std::pair<std::error_code, std::string>> read(std::uint64_t offset, std::size_t max);

  // The file's verified byte ranges [begin, end), in order (a player's buffer bar).
  [[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> have_ranges() const;

  file_reader(session& s, torrent_id t, std::uint64_t id, std::uint32_t file, std::uint64_t size, std::string path);

 private:
  session& s_;
  torrent_id torrent_;
  std::uint64_t id_;  // the torrent's reader id
  std::uint32_t file_;
  std::uint64_t size_;
  std::string path_;
};

}  // namespace shoal::stream
