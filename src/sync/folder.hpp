// A synced folder on this device: DIR, and under DIR/.shoal/ its key (folder.key, 0600),
// this device's identity (device.key, 0600) and its index (index.db). Everything shoal keeps
// for a folder lives under DIR/.shoal/, which is never synced.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "sync/index.hpp"
#include "sync/keys.hpp"
#include "sync/scanner.hpp"

namespace shoal::sync {

struct folder_paths {
  explicit folder_paths(const std::filesystem::path& dir);
  std::filesystem::path dir;
  std::filesystem::path state;  // DIR/.shoal
  std::filesystem::path key_file;
  std::filesystem::path device_file;
  std::filesystem::path index_file;
};

class folder {
 public:
  // Makes DIR (if missing) and DIR/.shoal/, stores `key` and opens the index. A DIR that
  // already belongs to another folder (another share id) is refused; the same folder is
  // opened as it is, taking the read-write key if it only had the read-only one.
  // Errors: errc::io, errc::invalid_argument (another folder's DIR).
  [[nodiscard]] static result<folder> create(const std::filesystem::path& dir, const folder_key& key);
  // Opens a folder made by create. Errors: errc::io (no folder there, unreadable files),
  // errc::syntax (a damaged key file).
  [[nodiscard]] static result<folder> open(const std::filesystem::path& dir);

  folder(folder&&) noexcept;
  folder& operator=(folder&&) noexcept;
  ~folder();

  [[nodiscard]] const folder_paths& paths() const { return paths_; }
  [[nodiscard]] const folder_key& key() const { return key_; }
  [[nodiscard]] const device_identity& device() const { return device_; }
  [[nodiscard]] index& db() { return *index_; }

  // One scan of the folder into its index. At most once an hour (and on the first scan) it
  // also prunes the archive by the folder's settings (archive.hpp); a bad setting or a prune
  // that fails is reported through opt.on_error and does not stop the scan.
  [[nodiscard]] result<scan_stats> scan(const scan_options& opt = {});

 private:
  folder(folder_paths p, folder_key k, device_identity d, index ix);
  folder_paths paths_;
  folder_key key_;
  device_identity device_;
  std::unique_ptr<index> index_;
  std::int64_t last_prune_ = 0;  // seconds since the epoch
};

}  // namespace shoal::sync
