// Blocking file I/O for one torrent's files, called from disk pool threads: pread/pwrite
// through a small cache of open descriptors, fdatasync on flush. Never follows a symlink
// in any component beneath the save folder (safe_path.hpp), never leaves that folder
// (paths are sanitised upstream, and openat2's RESOLVE_BENEATH checks again).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "storage/file_pool.hpp"
#include "storage/file_storage.hpp"

namespace shoal {

inline constexpr std::size_t max_open_files = 64;

class disk_io {
 public:
  // With a pool, the descriptors held count against the session's bound (file_pool.hpp).
  disk_io(const file_storage& fs, std::filesystem::path save_path, std::shared_ptr<file_pool> pool = nullptr);
  ~disk_io();
  disk_io(const disk_io&) = delete;
  disk_io& operator=(const disk_io&) = delete;

  // Reads [begin, begin+length) of a piece into out; pad ranges and missing files read as
  // zeros only when allow_missing is set (checking), otherwise a missing file is an error.
  std::error_code read(std::uint32_t piece, std::uint64_t begin, std::uint64_t length, char* out,
                       bool allow_missing = false);
  // Writes a whole piece or part of it; creates files and folders as needed.
  std::error_code write(std::uint32_t piece, std::uint64_t begin, std::string_view data);
  // fdatasync every file written since the last flush. After one failure, every later
  // call fails too: data that could not be synced may be lost.
  std::error_code flush();
  // fdatasync every file of the torrent that exists (after a check read them back).
  std::error_code sync_all();
  // True if file f exists with at least its full size.
  [[nodiscard]] bool file_complete(std::uint32_t f) const;
  [[nodiscard]] std::filesystem::path file_path(std::uint32_t f) const;
  // File f's path beneath the save folder: the metainfo's, or the name it was renamed to.
  [[nodiscard]] std::string rel_path(std::uint32_t f) const;
  // Names given at runtime (from resume data), before any I/O.
  void set_renamed(const std::map<std::uint32_t, std::string>& renamed);
  // Renames `from` (a file or a folder beneath the save folder) to `to` on disk, if it is
  // there yet, never over something that exists and never through a symlink, and gives
  // the files in `names` their new paths; no descriptor is opened by the old name after it.
  std::error_code rename(const std::string& from, const std::string& to,
                         const std::map<std::uint32_t, std::string>& names);
  // Creates empty files (0-byte entries) so a finished download has every file.
  std::error_code create_empty_files();

  // --- for the file_pool ---
  // The use stamp of the least recently used open descriptor; nullopt with none open.
  [[nodiscard]] std::optional<std::uint64_t> oldest_use();
  // Closes that descriptor (synced first if written); false with none open.
  bool evict_oldest();

 private:
  // Closed when the last user lets go, so eviction never closes a descriptor mid-read.
  struct fd_holder {
    int fd;
    explicit fd_holder(int f) : fd(f) {}
    ~fd_holder();
    fd_holder(const fd_holder&) = delete;
    fd_holder& operator=(const fd_holder&) = delete;
  };
  struct handle {
    std::shared_ptr<fd_holder> file;
    bool writable = false;
    std::uint64_t last_use = 0;
  };
  std::shared_ptr<fd_holder> open_file(std::uint32_t f, bool write, std::error_code& ec);
  void evict_locked();
  // Closes the least recently used descriptor (caller holds mu_; there is one).
  void close_oldest_locked();
  [[nodiscard]] std::uint64_t next_stamp() { return pool_ ? pool_->stamp() : ++clock_; }

  const file_storage& fs_;
  std::filesystem::path root_;
  std::mutex mu_;
  std::mutex flush_mu_;
  std::error_code sync_error_;  // sticky: after a failed fdatasync every flush fails
  std::unordered_map<std::uint32_t, handle> open_;
  mutable std::mutex names_mu_;                             // after mu_ when both are held
  std::unordered_map<std::uint32_t, std::string> renamed_;  // file -> its path now
  std::vector<std::uint32_t> dirty_;
  std::uint64_t clock_ = 0;
  std::shared_ptr<file_pool> pool_;  // shared: a torrent may outlive its session briefly
};

}  // namespace shoal
