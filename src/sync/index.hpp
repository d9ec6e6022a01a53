// The per-folder index of `shoal sync`: one SQLite database at DIR/.shoal/index.db (WAL
// mode) with a record per path the folder has or had, the folder's meta data and, per
// peer device, the last of its sequence numbers this device has seen.
//
// A record is what peers exchange: its canonical encoding (bencode, see encode_record) is
// signed by the folder's read-write key, and a device that receives one checks the
// signature with the read-only key (decode_record) before it believes any of it. A record
// made on a read-only device cannot be signed: it is kept as local_only and never sent.
//
// Sequence numbers are local: every record put into the index (made here or received)
// gets the next one, so "everything after N" (changes_since) is what a peer that has seen
// up to N needs. Records are ordered on disk by their path compared component by
// component ('/' sorts before every other byte), which is the order a sorted depth-first
// walk of the folder visits them: the scanner merges the two without loading either.
//
// Database failures (disk full, a corrupt file) throw sync::index_error; malformed input
// (a peer's record) is an error value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "sync/keys.hpp"

namespace shoal::sync {

// Bounds on a record from a peer; each is checked by decode_record and tested at the bound
// and one past it.
inline constexpr std::size_t max_path_bytes = 4096;
inline constexpr std::size_t max_name_bytes = 255;  // one path component
inline constexpr std::size_t max_target_bytes = 4096;
inline constexpr std::uint32_t min_block_size = 128 * 1024;
inline constexpr std::uint32_t max_block_size = 16 * 1024 * 1024;
inline constexpr std::size_t target_blocks = 2000;  // block size is chosen to stay under this
inline constexpr std::size_t max_blocks = 65536;    // 1 TiB at the largest block size
inline constexpr std::uint64_t max_file_size = std::uint64_t{max_blocks} * max_block_size;
inline constexpr std::size_t max_version_entries = 1024;  // devices that ever changed one file
inline constexpr std::size_t max_device_id_bytes = 64;
inline constexpr std::size_t max_record_bytes = 3 * 1024 * 1024;  // a canonical encoding
inline constexpr std::uint32_t max_mode = 07777;

enum class entry_type : std::uint8_t { file = 0, dir = 1, symlink = 2 };
[[nodiscard]] std::string_view to_string(entry_type t);

// Block size for a file of `size` bytes: the smallest power of two from 128 KiB to 16 MiB
// that gives at most target_blocks blocks (16 MiB past that).
[[nodiscard]] std::uint32_t block_size_for(std::uint64_t size);
[[nodiscard]] std::uint64_t block_count(std::uint64_t size, std::uint32_t block_size);

// A version vector: per device that changed the file, how many times it did. Kept sorted by
// device id with no duplicates and no zero counters.
struct version_entry {
  std::string device;
  std::uint64_t counter = 0;
  bool operator==(const version_entry&) const = default;
};
using version_vector = std::vector<version_entry>;

// Adds one to `device`'s counter (inserting it in order if new).
void bump(version_vector& v, std::string_view device);
enum class ordering { equal, before, after, concurrent };
// How a relates to b: before = b has seen everything a has and more.
[[nodiscard]] ordering compare(const version_vector& a, const version_vector& b);

struct record {
  std::string path;  // relative, '/'-separated, the bytes as the file system gave them
  entry_type type = entry_type::file;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t mode = 0;        // permission bits (07777)
  std::string target;            // symlinks: the target as read by readlink
  std::uint32_t block_size = 0;  // files: see block_size_for; 0 otherwise
  std::string blocks;            // files: SHA-256 of each block, 32 bytes each, in order
  version_vector version;
  bool deleted = false;
  std::string modified_by;     // device id of the last change
  std::string signature;       // 64 bytes by the folder key over signed_bytes(); empty if local_only
  bool local_only = false;     // made on a read-only device: unsigned, never sent to peers
  std::uint64_t sequence = 0;  // local, assigned by index::put; not part of the encoding
  // Local, not part of the encoding: the file's st_dev/st_ino when this device's scanner
  // last saw it (0/0: unknown, e.g. a record from a peer not scanned here yet). The scanner
  // recognises a moved file by them.
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;

  [[nodiscard]] std::size_t block_total() const { return blocks.size() / 32; }
};

// The canonical bencode of a record (every field but signature, local_only and sequence).
[[nodiscard]] std::string encode_record(const record& r);
// What the folder key signs: a domain string, then encode_record.
[[nodiscard]] std::string signed_bytes(std::string_view canonical);
// Signs r in place with a read-write key (sets r.signature, clears local_only).
void sign_record(record& r, const folder_key& key);
// Checks every bound and rule of a record (path form, sizes, block list, version vector).
[[nodiscard]] result<bool> validate_record(const record& r);
// A record from a peer: canonical bytes and their signature. Verifies the signature with
// the folder's (read-only) key first, then decodes strictly: anything not canonical, past a
// bound, or inconsistent is refused with an error naming it. Never throws.
[[nodiscard]] result<record> decode_record(std::string_view canonical, std::string_view signature,
                                           const public_key& folder);
// True if path is a valid relative record path (see validate_record).
[[nodiscard]] result<bool> validate_path(std::string_view path);

// The sort key of a path: '/' replaced by a zero byte, so byte order is the depth-first
// order of a sorted walk.
[[nodiscard]] std::string path_key(std::string_view path);
[[nodiscard]] std::string key_path(std::string_view key);

class index_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct index_totals {
  std::uint64_t files = 0;  // regular files not deleted
  std::uint64_t dirs = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t deleted = 0;
  std::uint64_t bytes = 0;  // sum of the sizes of the files not deleted
};

// The part of a record the scanner compares with the disk (no block list, no signature).
struct record_head {
  std::string key;  // path_key(path)
  entry_type type = entry_type::file;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t mode = 0;
  std::string target;
  bool deleted = false;
  bool local_only = false;
  std::uint64_t sequence = 0;
  std::uint64_t dev = 0;  // see record::dev
  std::uint64_t ino = 0;
};

class index {
 public:
  // Opens the database at `file`, creating it (and its tables) if it does not exist.
  [[nodiscard]] static result<index> open(const std::filesystem::path& file);
  index(index&&) noexcept;
  index& operator=(index&&) noexcept;
  ~index();

  [[nodiscard]] std::optional<record> get(std::string_view path) const;
  // Stores r under its path (replacing what was there), with the next sequence number,
  // which is also written to r.sequence and returned. r is stored as given: a record from a
  // peer must have come through decode_record.
  std::uint64_t put(record& r);
  // Records with sequence > after, in sequence order, at most `limit`. Each carries its
  // block list (up to 2 MiB for the largest file): keep pages small.
  [[nodiscard]] std::vector<record> changes_since(std::uint64_t after, std::size_t limit) const;
  // The highest sequence number given so far (0 for an empty index).
  [[nodiscard]] std::uint64_t last_sequence() const { return last_seq_; }

  // Up to `limit` record heads with key > after_key, in key order (after_key empty: from
  // the first). The scanner's cursor.
  [[nodiscard]] std::vector<record_head> heads_after(std::string_view after_key, std::size_t limit) const;

  // Sets the local st_dev/st_ino of the record at `path` (no new sequence number: they are
  // never sent). The scanner's, for records it keeps.
  void set_inode(std::string_view path, std::uint64_t dev, std::uint64_t ino);

  // Per peer device: the last of its sequence numbers seen here (0 if none).
  [[nodiscard]] std::uint64_t peer_sequence(std::string_view device) const;
  void set_peer_sequence(std::string_view device, std::uint64_t seq);

  // Small named values: "key_type" ("W"/"R"), "share_id" (hex), "device_id", ...
  [[nodiscard]] std::optional<std::string> meta(std::string_view name) const;
  void set_meta(std::string_view name, std::string_view value);

  [[nodiscard]] index_totals totals() const;

  // Groups writes into one transaction (far faster than one per put). Not nestable.
  void begin();
  void commit();
  void rollback();

 private:
  struct impl;
  explicit index(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
  std::uint64_t last_seq_ = 0;
};

}  // namespace shoal::sync
