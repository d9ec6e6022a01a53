#include "storage/resume.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/bencode.hpp"
#include "core/metainfo.hpp"
#include "storage/safe_path.hpp"

namespace shoal {

namespace fs = std::filesystem;

namespace {
// Ratios up to a million: past that a goal means nothing, and the integer stays far from overflow.
constexpr std::int64_t max_goal_ratio_ppm = 1'000'000'000'000;
}  // namespace

std::string encode_resume(const resume_data& r) {
  bencode::dict d;
  d["file-format"] = "shoal resume";
  d["file-version"] = 1;
  d["info-hash"] = r.info_hash;
  d["num pieces"] = static_cast<std::int64_t>(r.pieces.size());
  d["pieces"] = r.pieces.bytes();
  d["uploaded"] = static_cast<std::int64_t>(r.uploaded);
  d["downloaded"] = static_cast<std::int64_t>(r.downloaded);
  bencode::list files;
  for (const auto& f : r.files)
    files.emplace_back(bencode::list{static_cast<std::int64_t>(f.size), f.mtime_ns});
  d["files"] = std::move(files);
  d["paused"] = r.paused ? 1 : 0;
  d["file priorities"] = std::string(r.file_priorities.begin(), r.file_priorities.end());
  d["sequential"] = r.sequential ? 1 : 0;
  d["max download rate"] = static_cast<std::int64_t>(r.max_download_rate);
  d["max upload rate"] = static_cast<std::int64_t>(r.max_upload_rate);
  // Ratios in millionths: bencode has no floats.
  if (r.goal_ratio) {
    const double ppm = std::clamp(*r.goal_ratio * 1e6 + 0.5, 0.0, static_cast<double>(max_goal_ratio_ppm));
    d["goal ratio ppm"] = static_cast<std::int64_t>(ppm);
  }
  if (r.goal_seeding_time) d["goal seeding time"] = *r.goal_seeding_time;
  if (r.goal_idle_time) d["goal idle time"] = *r.goal_idle_time;
  d["queue position"] = static_cast<std::int64_t>(r.queue_position);
  d["added time"] = r.added_time;
  d["completed time"] = r.completed_time;
  d["seeding seconds"] = r.seeding_seconds;
  d["active seconds"] = r.active_seconds;
  d["save path"] = r.save_path;
  bencode::list labels(r.labels.begin(), r.labels.end());
  d["labels"] = std::move(labels);
  bencode::list trackers(r.trackers.begin(), r.trackers.end());
  d["trackers"] = std::move(trackers);
  bencode::list renamed;
  for (const auto& [f, path] : r.renamed)
    renamed.emplace_back(bencode::list{static_cast<std::int64_t>(f), path});
  d["renamed"] = std::move(renamed);
  if (!r.name.empty()) d["name"] = r.name;
  return bencode::encode(d);
}

std::vector<resume_file_stamp> stamp_files(const std::vector<fs::path>& paths) {
  std::vector<resume_file_stamp> out(paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) {
    struct stat st {};
    if (::lstat(paths[i].c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      out[i].size = static_cast<std::uint64_t>(st.st_size);
      out[i].mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
  }
  return out;
}

result<resume_data> decode_resume(std::string_view bytes, std::string_view info_hash, std::uint32_t num_pieces) {
  auto doc = bencode::decode(bytes);
  if (!doc) return error{doc.err().code, "resume data: " + doc.err().detail, doc.err().offset};
  auto root = doc->root();
  if (root.find("file-format").as_string() != "shoal resume") {
    return error{errc::syntax, "resume data: not a shoal resume file", no_offset};
  }
  if (root.find("info-hash").as_string() != info_hash) {
    return error{errc::invalid_argument, "resume data: belongs to another torrent", no_offset};
  }
  if (root.find("num pieces").as_int() != num_pieces) {
    return error{errc::syntax, "resume data: piece count does not match the torrent", no_offset};
  }
  resume_data r;
  r.info_hash = std::string(info_hash);
  r.pieces = bitfield(num_pieces);
  if (!r.pieces.assign(root.find("pieces").as_string())) {
    return error{errc::syntax, "resume data: piece bitfield has the wrong length", no_offset};
  }
  r.uploaded = static_cast<std::uint64_t>(std::max<std::int64_t>(0, root.find("uploaded").as_int()));
  r.downloaded = static_cast<std::uint64_t>(std::max<std::int64_t>(0, root.find("downloaded").as_int()));
  auto nonneg = [&](std::string_view k) { return std::max<std::int64_t>(0, root.find(k).as_int()); };
  for (auto f : root.find("files")) {
    if (!f.is_list() || f.size() != 2) {
      r.files.clear();  // not trusted: every file is checked as if nothing was recorded
      break;
    }
    auto it = f.begin();
    const auto size = (*it).as_int();
    const auto mtime = (*++it).as_int();
    r.files.push_back({static_cast<std::uint64_t>(std::max<std::int64_t>(0, size)), mtime});
  }
  r.paused = root.find("paused").as_int() != 0;
  const auto prio = root.find("file priorities").as_string();
  r.file_priorities.assign(prio.begin(), prio.end());
  r.sequential = root.find("sequential").as_int() != 0;
  r.max_download_rate = static_cast<std::uint64_t>(nonneg("max download rate"));
  r.max_upload_rate = static_cast<std::uint64_t>(nonneg("max upload rate"));
  if (auto g = root.find("goal ratio ppm"); g.is_int())
    r.goal_ratio = static_cast<double>(std::clamp<std::int64_t>(g.as_int(), 0, max_goal_ratio_ppm)) / 1e6;
  if (auto g = root.find("goal seeding time"); g.is_int()) r.goal_seeding_time = std::max<std::int64_t>(0, g.as_int());
  if (auto g = root.find("goal idle time"); g.is_int()) r.goal_idle_time = std::max<std::int64_t>(0, g.as_int());
  r.queue_position = static_cast<std::uint32_t>(std::min<std::int64_t>(nonneg("queue position"), 1 << 30));
  r.added_time = nonneg("added time");
  r.completed_time = nonneg("completed time");
  r.seeding_seconds = nonneg("seeding seconds");
  r.active_seconds = nonneg("active seconds");
  r.save_path = std::string(root.find("save path").as_string());
  for (auto l : root.find("labels"))
    if (l.is_string()) r.labels.emplace_back(l.as_string());
  for (auto l : root.find("trackers"))
    if (l.is_string()) r.trackers.emplace_back(l.as_string());
  if (auto n = root.find("name").as_string(); n.size() <= 1024) r.name = std::string(n);
  // Only clean relative paths: a name from here is opened beneath the save folder.
  for (auto e : root.find("renamed")) {
    if (!e.is_list() || e.size() != 2) continue;
    auto it = e.begin();
    const auto f = (*it).as_int();
    const auto path = (*++it).as_string();
    if (f >= 0 && f < (1 << 24) && is_clean_relative_path(path)) r.renamed[static_cast<std::uint32_t>(f)] = path;
  }
  return r;
}

std::error_code save_resume_file(const fs::path& file, const std::string& bytes) {
  return write_file_atomically(file, bytes);
}

namespace {

// The folder that will hold `file`, opened; its last component may not be a symlink (a
// planted `.shoal` -> elsewhere would redirect resume data, cached metadata and the DHT
// state). Its ancestors are the user's choice and are followed.
safe::fd open_folder_of(const fs::path& file, bool create, std::error_code& ec) {
  const fs::path folder = file.parent_path();
  const fs::path last = folder.filename();
  // "x", "./x", "../x", "/x": the folder is the user's own (the working folder or an
  // ancestor of it), taken as it is.
  if (folder.empty() || folder == folder.root_path() || last.empty() || last == "." || last == "..") {
    return safe::open_root(folder, create && !folder.empty(), ec);
  }
  const fs::path up = folder.parent_path();
  safe::fd top = safe::open_root(up, create, ec);
  if (!top) return {};
  if (create) return safe::make_dirs_beneath(top.get(), last, ec);
  return safe::open_beneath(top.get(), last, O_RDONLY | O_DIRECTORY, 0, false, ec);
}

// A fresh name beside the file: O_CREAT | O_EXCL | O_NOFOLLOW never opens, let alone
// truncates, something planted there (a symlink at a fixed "NAME.tmp" would have had its
// target truncated and overwritten).
safe::fd create_temp(int dirfd, const std::string& base, std::string& name, std::error_code& ec) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::array<unsigned char, 6> rnd{};
    if (RAND_bytes(rnd.data(), static_cast<int>(rnd.size())) != 1) {
      ec = std::make_error_code(std::errc::resource_unavailable_try_again);
      return {};
    }
    static constexpr char hex[] = "0123456789abcdef";
    name = "." + base + ".";
    for (unsigned char c : rnd) {
      name += hex[c >> 4];
      name += hex[c & 15];
    }
    name += ".tmp";
    const int f = ::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f >= 0) return safe::fd(f);
    if (errno != EEXIST) {
      ec = {errno, std::generic_category()};
      return {};
    }
  }
  ec = std::make_error_code(std::errc::file_exists);
  return {};
}

// Temporary files of earlier writes that never got renamed (the process was killed in
// between) would pile up under their random names: removed after a successful write.
// unlinkat removes a name, never what a planted link points to.
void remove_stale_temps(int dirfd, const std::string& base) {
  const int dup = ::dup(dirfd);
  if (dup < 0) return;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return;
  }
  const std::string prefix = "." + base + ".";
  constexpr std::size_t random_hex = 12;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n(e->d_name);
    if (n.size() == prefix.size() + random_hex + 4 && n.substr(0, prefix.size()) == prefix &&
        n.substr(n.size() - 4) == ".tmp") {
      stale.emplace_back(n);
    }
  }
  ::closedir(d);
  for (const auto& n : stale)
    ::unlinkat(dirfd, n.c_str(), 0);
}

}  // namespace

std::error_code write_file_atomically(const fs::path& file, const std::string& bytes) {
  std::error_code ec;
  if (file.filename().empty()) return std::make_error_code(std::errc::invalid_argument);
  safe::fd dir = open_folder_of(file, true, ec);
  if (!dir) return ec;
  const std::string base = file.filename().string();
  std::string tmp;
  safe::fd out = create_temp(dir.get(), base, tmp, ec);
  if (!out) return ec;
  auto fail = [&](std::error_code e) {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return e;
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(out.get(), bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail({errno, std::generic_category()});
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(out.get()) != 0) return fail({errno, std::generic_category()});
  out = safe::fd();
  // rename replaces whatever is at the final name (a symlink included) without following it.
  if (::renameat(dir.get(), tmp.c_str(), dir.get(), base.c_str()) != 0) return fail({errno, std::generic_category()});
  ::fsync(dir.get());
  remove_stale_temps(dir.get(), base);
  return {};
}

result<resume_data> load_resume_file(const fs::path& file, std::string_view info_hash, std::uint32_t num_pieces) {
  std::error_code ec;
  safe::fd dir = open_folder_of(file, false, ec);
  safe::fd in;
  if (dir) in = safe::open_beneath(dir.get(), file.filename(), O_RDONLY, 0, false, ec);
  if (!in) return error{errc::io, "resume data: " + ec.message(), no_offset};
  struct stat st {};
  if (::fstat(in.get(), &st) != 0)
    return error{errc::io, "resume data: " + std::string(std::strerror(errno)), no_offset};
  if (!S_ISREG(st.st_mode)) return error{errc::io, "resume data: not a regular file", no_offset};
  if (static_cast<std::uint64_t>(st.st_size) > max_resume_size) {
    return error{errc::limit_exceeded, "resume data: file too large", no_offset};
  }
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t r = ::read(in.get(), data.data() + done, data.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return error{errc::io, "resume data: short read", no_offset};
    done += static_cast<std::size_t>(r);
  }
  return decode_resume(data, info_hash, num_pieces);
}

}  // namespace shoal
