#include "sync/folder.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

#include "core/text.hpp"
#include "sync/archive.hpp"

namespace shoal::sync {

folder_paths::folder_paths(const std::filesystem::path& d)
    : dir(d),
      state(d / ".shoal"),
      key_file(state / "folder.key"),
      device_file(state / "device.key"),
      index_file(state / "index.db") {}

folder::folder(folder_paths p, folder_key k, device_identity d, index ix)
    : paths_(std::move(p)), key_(std::move(k)), device_(std::move(d)), index_(std::make_unique<index>(std::move(ix))) {}
folder::folder(folder&&) noexcept = default;
folder& folder::operator=(folder&&) noexcept = default;
folder::~folder() = default;

namespace {

result<folder_key> read_key_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return error{errc::io, file.string() + ": cannot be read"};
  std::string text;
  text.resize(max_key_input + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  auto k = folder_key::parse(text);
  std::fill(text.begin(), text.end(), '\0');
  if (!k) return error{k.err().code, file.string() + ": " + k.err().message()};
  return k;
}

result<bool> make_private_dir(const std::filesystem::path& p) {
  if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST)
    return error{errc::io, p.string() + ": " + std::strerror(errno)};
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return error{errc::io, p.string() + ": not a directory"};
  }
  return true;
}

}  // namespace

result<folder> folder::create(const std::filesystem::path& dir, const folder_key& key) {
  folder_paths paths(dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return error{errc::io, dir.string() + ": " + ec.message()};
  if (!std::filesystem::is_directory(dir, ec)) return error{errc::io, dir.string() + ": not a directory"};
  if (auto m = make_private_dir(paths.state); !m) return m.err();
  // The key to keep: the one given, unless the folder already has its read-write key.
  folder_key stored = key;
  bool write_key = true;
  if (std::filesystem::exists(paths.key_file, ec)) {
    auto old = read_key_file(paths.key_file);
    if (!old) return old.err();
    if (old->share() != key.share()) {
      return error{errc::invalid_argument, dir.string() + " is already joined to another folder (share id " +
                                               to_hex(as_view(old->share())) + ")"};
    }
    write_key = key.can_write() && !old->can_write();
    if (!write_key) stored = *old;
  }
  if (write_key) {
    if (auto w = write_private_file(paths.key_file, stored.text() + "\n"); !w) return w.err();
  }
  auto dev = device_identity::load_or_create(paths.device_file);
  if (!dev) return dev.err();
  auto ix = index::open(paths.index_file);
  if (!ix) return ix.err();
  try {
    ix->set_meta("key_type", std::string(1, static_cast<char>(stored.type())));
    ix->set_meta("share_id", to_hex(as_view(stored.share())));
    ix->set_meta("device_id", dev->id());
  } catch (const index_error& e) {
    return error{errc::io, e.what()};
  }
  return folder(std::move(paths), stored, std::move(*dev), std::move(*ix));
}

result<folder> folder::open(const std::filesystem::path& dir) {
  folder_paths paths(dir);
  std::error_code ec;
  if (!std::filesystem::exists(paths.key_file, ec)) {
    return error{errc::io, dir.string() + " is not a shoal sync folder (no .shoal/folder.key): see shoal sync init"};
  }
  auto key = read_key_file(paths.key_file);
  if (!key) return key.err();
  auto dev = device_identity::load_or_create(paths.device_file);
  if (!dev) return dev.err();
  auto ix = index::open(paths.index_file);
  if (!ix) return ix.err();
  return folder(std::move(paths), std::move(*key), std::move(*dev), std::move(*ix));
}

result<scan_stats> folder::scan(const scan_options& opt) {
  const std::int64_t now = ::time(nullptr);
  if (last_prune_ == 0 || now - last_prune_ >= 3600 || now < last_prune_) {
    last_prune_ = now;
    auto report = [&](const std::string& why) {
      if (opt.on_error) opt.on_error(".shoal/archive", why);
    };
    if (auto s = load_settings(paths_.state); !s) {
      report(s.err().message());
    } else if (auto p = prune_archive(paths_.dir, *s, now); !p) {
      report(p.err().message());
    }
  }
  return sync::scan(paths_.dir, *index_, key_, device_.id(), opt);
}

}  // namespace shoal::sync
