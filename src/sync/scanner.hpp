// The scanner: brings a folder's index up to date with what is on disk, in one pass.
//
// It walks DIR depth first with every directory's entries sorted by bytes, which is the
// order of the index's keys (see index.hpp), and merges that walk with the index read in
// small key-ordered pages: memory holds one directory listing per level of the walk and
// one page of record heads, never the whole folder. Symlinks are never followed: a link is
// recorded as a link with its target. DIR/.shoal/ is always skipped, and DIR/.shoalignore
// patterns apply if that file exists (ignored paths keep whatever index record they had).
//
// A regular file whose size, mtime or mode differ from its record is hashed (SHA-256 per
// block); everything else keeps its record. A path gone from disk gets a deleted record.
// A file that is new at one path and gone from another in the same scan, with the same
// st_dev/st_ino (kept in the index as local columns), size and mtime, was moved or renamed:
// its new record takes the old one's block list without reading the file (a directory moved
// within the folder moves all its files this way), and is stored before the old path's
// deleted record, so a peer sees the new path first. Remembering gone and new files is
// bounded (scan_options::move_window); past the bound they are hashed as before. Like the
// rest of the scanner this trusts size and mtime: an inode number reused by a different
// file with the same size and mtime to the nanosecond would be taken for a move.
// Each change bumps this device's counter in the version vector and gets the next
// sequence number; with a read-write key the record is signed, with a read-only key it is
// kept unsigned and local_only. A device that has since been given the read-write key
// stores its local_only records again, signed. Writes are grouped in transactions.
//
// scan() blocks (it reads and hashes every changed byte): run it on a worker thread, never
// on the network thread.
//
// Limits: each directory of the walk's current path stays open (one descriptor per level),
// so a tree nested deeper than the process's descriptor limit reports its deepest folders as
// unreadable (their records are kept); and one directory's names are held while it is
// walked, so a single folder of a million entries costs its listing (tens of MB) for that
// time. The walk itself is by descriptors with O_NOFOLLOW: a directory swapped for a symlink
// during a scan cannot lead it out of the folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/error.hpp"
#include "sync/index.hpp"
#include "sync/keys.hpp"

namespace shoal::sync {

struct scan_options {
  std::size_t read_buffer = 1024 * 1024;  // bytes per pread() of a file being hashed, per thread
  // Threads hashing the blocks of a file at once (0: one per CPU). The walk and the index
  // stay on the calling thread.
  std::size_t threads = 0;
  std::size_t batch_records = 1000;  // records per transaction
  // Moves: a file gone from one path that turns up at another in the same scan with the same
  // st_dev/st_ino, size and mtime keeps its block list (nothing is read). Up to this many
  // gone files are remembered, and up to this many new files wait for the end of the walk
  // for a gone file that comes later in key order; past either, files are hashed as new.
  std::size_t move_window = 16384;
  // Called for a path that could not be read (it keeps its record); may be empty.
  std::function<void(const std::string& path, const std::string& why)> on_error;
};

struct scan_stats {
  std::uint64_t added = 0;      // paths new to the index (or back after a delete)
  std::uint64_t changed = 0;    // paths whose record changed
  std::uint64_t deleted = 0;    // paths gone from disk
  std::uint64_t unchanged = 0;  // paths whose record was kept
  std::uint64_t moved = 0;      // of the added or changed, files that took a gone path's block list
  std::uint64_t files_hashed = 0;
  std::uint64_t bytes_hashed = 0;  // bytes read to hash them
  std::uint64_t errors = 0;        // unreadable paths (left as they were)
  std::uint64_t skipped = 0;       // files that changed while being hashed (next scan takes them)
  double seconds = 0;
};

// One scan of `folder` into `idx`, changes made as `device_id` and signed with `key` when it
// is read-write. Errors: errc::io (the folder cannot be read, the database failed).
[[nodiscard]] result<scan_stats> scan(const std::filesystem::path& folder, index& idx, const folder_key& key,
                                      const std::string& device_id, const scan_options& opt = {});

// SHA-256 of each block of an open file (block size from block_size_for(size)): the block
// list of a record. Reads with `buffer`. Errors: errc::io; the size read must be `size`.
[[nodiscard]] result<std::string> hash_blocks(int fd, std::uint64_t size, std::uint32_t block_size,
                                              std::string& buffer);

}  // namespace shoal::sync
