#include "storage/creator.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "core/bencode.hpp"
#include "core/hash.hpp"
#include "core/merkle.hpp"

namespace shoal {

namespace fs = std::filesystem;

namespace {

struct source_file {
  fs::path disk;                   // where to read it
  std::vector<std::string> comps;  // path inside the torrent (below the name)
  std::uint64_t size = 0;
  bool executable = false;
  bool symlink = false;              // BEP 47: no data, `link` is its target
  std::vector<std::string> link;     // target, relative to the torrent's folder
  std::uint64_t offset = 0;          // in piece space
  std::vector<sha256_digest> layer;  // v2: one hash per piece (or the root, for small files)
  sha256_digest root{};
};

struct segment {
  std::uint32_t file;
  std::uint64_t file_offset;
  std::uint64_t length;
};

class fd_cache {
 public:
  ~fd_cache() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get(std::uint32_t file, const fs::path& p) {
    if (file == file_ && fd_ >= 0) return fd_;
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    file_ = file;
    if (fd_ >= 0) ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
    return fd_;
  }

 private:
  int fd_ = -1;
  std::uint32_t file_ = UINT32_MAX;
};

bool matches(const std::string& glob, const std::string& s, int flags) {
  return ::fnmatch(glob.c_str(), s.c_str(), flags) == 0;
}

// Where a symlink inside `root` points, as components below `root`; nullopt when the target
// lies outside it (a torrent may only link to its own files).
std::optional<std::vector<std::string>> link_inside(const fs::path& link, const fs::path& root, std::error_code& ec) {
  const fs::path target = fs::read_symlink(link, ec);
  if (ec) return std::nullopt;
  const fs::path abs_root = fs::absolute(root, ec).lexically_normal();
  if (ec) return std::nullopt;
  fs::path abs_target = target.is_absolute() ? target : fs::absolute(link, ec).parent_path() / target;
  if (ec) return std::nullopt;
  const fs::path rel = abs_target.lexically_normal().lexically_relative(abs_root);
  if (rel.empty() || *rel.begin() == ".." || rel == ".") return std::nullopt;
  std::vector<std::string> comps;
  for (const auto& c : rel) {
    if (!c.empty() && c != ".") comps.push_back(c.string());
  }
  if (comps.empty()) return std::nullopt;
  return comps;
}

bool component_less(const source_file& a, const source_file& b) {
  return std::lexicographical_compare(a.comps.begin(), a.comps.end(), b.comps.begin(), b.comps.end());
}

}  // namespace

bool is_junk_file(const std::string& name) {
  static constexpr const char* exact[] = {".DS_Store",   ".AppleDouble", ".LSOverride", "Thumbs.db",
                                          "ehthumbs.db", "desktop.ini",  ".directory"};
  for (const char* j : exact) {
    if (::strcasecmp(name.c_str(), j) == 0) return true;
  }
  static constexpr const char* globs[] = {"*.swp", "*.swo", "*.swx", "*~", "#*#", ".#*", "._*"};
  for (const char* g : globs) {
    if (::fnmatch(g, name.c_str(), 0) == 0) return true;
  }
  return false;
}

std::uint64_t auto_piece_length(std::uint64_t total) {
  std::uint64_t pl = 16 * 1024;
  while (pl < (16u << 20) && total / pl > 2000)
    pl *= 2;
  return pl;
}

result<std::string> create_torrent(const fs::path& path, const create_options& opt) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return error{errc::io, path.string() + ": no such file or folder", no_offset};

  const fs::path clean = path.lexically_normal();
  std::string name = !opt.name.empty()      ? opt.name
                     : clean.has_filename() ? clean.filename().string()
                                            : clean.parent_path().filename().string();
  if (name.empty() || name == "." || name == "..")
    name = fs::absolute(clean, ec).lexically_normal().filename().string();
  if (name.empty())
    return error{errc::invalid_argument, path.string() + ": cannot take a torrent name from this path", no_offset};

  std::vector<source_file> files;
  const bool multi = fs::is_directory(st);
  if (multi) {
    const bool v1_only = opt.version == torrent_version::v1;
    auto warn = [&](const std::string& w) {
      if (opt.warning) opt.warning(w);
    };
    fs::recursive_directory_iterator it(
        path, opt.follow_symlinks ? fs::directory_options::follow_directory_symlink : fs::directory_options::none, ec);
    if (ec) return error{errc::io, path.string() + ": " + ec.message(), no_offset};
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) return error{errc::io, path.string() + ": " + ec.message(), no_offset};
      std::error_code sec;
      // Lexical, not fs::relative: a symlinked file keeps its own name, not its target's.
      const fs::path relp = it->path().lexically_relative(path);
      const std::string rel = relp.generic_string();
      const std::string base = it->path().filename().string();
      bool skip = is_junk_file(base) || (!opt.include_hidden && !base.empty() && base[0] == '.');
      for (const auto& g : opt.exclude) {
        if (skip) break;
        skip = matches(g, rel, 0) || matches(g, base, 0);
      }
      const bool is_link = it->is_symlink(sec);
      if (skip) {
        // A left-out folder is not entered (nor is a linked one we do not follow).
        if (!is_link || opt.follow_symlinks) it.disable_recursion_pending();
        continue;
      }
      source_file f;
      f.disk = it->path();
      for (const auto& c : relp)
        f.comps.push_back(c.string());
      if (is_link && !opt.follow_symlinks) {
        if (v1_only) {
          warn(rel + ": a symlink, left out (v1 torrents cannot hold symlinks; --follow-symlinks reads through it)");
          continue;
        }
        auto target = link_inside(it->path(), path, sec);
        if (!target) {
          warn(rel + ": a symlink " + (sec ? "that cannot be read (" + sec.message() + ")" : "to outside the folder") +
               ", left out (--follow-symlinks reads through it)");
          continue;
        }
        f.symlink = true;
        f.link = std::move(*target);
        files.push_back(std::move(f));
        continue;
      }
      // Regular files, and with follow_symlinks what links lead to (linked folders are entered).
      if (!it->is_regular_file(sec)) continue;
      if (sec) return error{errc::io, it->path().string() + ": " + sec.message(), no_offset};
      files.push_back(std::move(f));
    }
    std::sort(files.begin(), files.end(), component_less);
  } else if (fs::is_regular_file(st)) {
    source_file f;
    f.disk = path;
    f.comps.push_back(name);
    files.push_back(std::move(f));
  } else {
    return error{errc::io, path.string() + ": not a regular file or folder", no_offset};
  }

  std::uint64_t total = 0;
  for (auto& f : files) {
    if (f.symlink) continue;  // BEP 47: a symlink has no data of its own
    struct stat sb {};
    if (::stat(f.disk.c_str(), &sb) != 0) {
      return error{errc::io, f.disk.string() + ": " + std::strerror(errno), no_offset};
    }
    f.size = static_cast<std::uint64_t>(sb.st_size);
    f.executable = (sb.st_mode & S_IXUSR) != 0;
    total += f.size;
  }
  if (total == 0)
    return error{errc::invalid_argument, path.string() + ": nothing to share (no file has any data)", no_offset};

  const bool v1 = opt.version != torrent_version::v2;
  const bool v2 = opt.version != torrent_version::v1;
  const std::uint64_t plen = opt.piece_length ? opt.piece_length : auto_piece_length(total);
  if (plen < 16 * 1024 || (plen & (plen - 1)) != 0 || plen > max_piece_length) {
    return error{errc::invalid_argument,
                 "piece size " + std::to_string(plen) + " must be a power of two from 16 KiB to 1 GiB", no_offset};
  }

  // Piece layout. v1-only pieces run across files; v2 and hybrid pieces start at each file.
  std::vector<std::vector<segment>> pieces;
  std::vector<std::uint32_t> piece_file;  // v2: the file a piece belongs to
  std::vector<std::uint64_t> piece_index_in_file;
  if (!v2) {
    std::uint64_t pos = 0;
    for (std::uint32_t i = 0; i < files.size(); ++i) {
      files[i].offset = pos;
      pos += files[i].size;
    }
    const std::uint64_t n = (total + plen - 1) / plen;
    pieces.resize(n);
    std::uint32_t fi = 0;
    for (std::uint64_t p = 0; p < n; ++p) {
      std::uint64_t start = p * plen, end = std::min(total, start + plen);
      while (start < end) {
        while (files[fi].offset + files[fi].size <= start)
          ++fi;
        const auto& f = files[fi];
        std::uint64_t take = std::min(end, f.offset + f.size) - start;
        pieces[p].push_back({fi, start - f.offset, take});
        start += take;
      }
    }
  } else {
    std::uint64_t pos = 0;
    for (std::uint32_t i = 0; i < files.size(); ++i) {
      auto& f = files[i];
      f.offset = pos;
      const std::uint64_t n = (f.size + plen - 1) / plen;
      f.layer.resize(n);
      for (std::uint64_t k = 0; k < n; ++k) {
        pieces.push_back({segment{i, k * plen, std::min(plen, f.size - k * plen)}});
        piece_file.push_back(i);
        piece_index_in_file.push_back(k);
      }
      pos += n * plen;
    }
  }
  if (pieces.size() > max_pieces) {
    return error{errc::invalid_argument,
                 std::to_string(pieces.size()) + " pieces is over the limit of " + std::to_string(max_pieces) +
                     "; choose a larger --piece-size",
                 no_offset};
  }

  std::string v1_hashes(v1 ? pieces.size() * 20 : 0, '\0');
  const std::uint64_t bpp = plen / merkle::block_size;
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::string err_text;

  auto worker = [&] {
    fd_cache fds;
    std::vector<char> buf(plen);
    hasher h1(hasher::algo::sha1);
    hasher h2(hasher::algo::sha256);
    std::vector<sha256_digest> leaves;
    for (;;) {
      const std::size_t p = next.fetch_add(1, std::memory_order_relaxed);
      if (p >= pieces.size() || failed.load(std::memory_order_relaxed)) return;
      std::uint64_t len = 0;
      for (const segment& s : pieces[p]) {
        int fd = fds.get(s.file, files[s.file].disk);
        std::uint64_t got = 0;
        while (fd >= 0 && got < s.length) {
          ssize_t r = ::pread(fd, buf.data() + len + got, s.length - got, static_cast<off_t>(s.file_offset + got));
          if (r <= 0) break;
          got += static_cast<std::uint64_t>(r);
        }
        if (got != s.length) {
          std::lock_guard lk(err_mu);
          err_text = files[s.file].disk.string() + ": " +
                     (fd < 0 ? std::string(std::strerror(errno)) : std::string("file shrank or could not be read"));
          failed = true;
          return;
        }
        len += s.length;
      }
      if (v1) {
        h1.update(buf.data(), len);
        // Hybrid: a file's last piece is followed by its pad file, which is zeros.
        if (v2 && len < plen && p + 1 < pieces.size()) {
          std::memset(buf.data() + len, 0, plen - len);
          h1.update(buf.data() + len, plen - len);
        }
        h1.final(reinterpret_cast<std::uint8_t*>(v1_hashes.data() + p * 20));
      }
      if (v2) {
        leaves.clear();
        for (std::uint64_t off = 0; off < len; off += merkle::block_size) {
          sha256_digest d;
          h2.update(buf.data() + off, std::min(merkle::block_size, len - off));
          h2.final(d.data());
          leaves.push_back(d);
        }
        source_file& f = files[piece_file[p]];
        if (f.size > plen) {
          // A piece-layer entry: the subtree over bpp leaves, zero-padded.
          leaves.resize(bpp, sha256_digest{});
        }
        f.layer[piece_index_in_file[p]] = merkle::root(leaves, sha256_digest{});
      }
      done.fetch_add(len, std::memory_order_relaxed);
    }
  };

  unsigned nthreads = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  nthreads = static_cast<unsigned>(std::min<std::size_t>(nthreads, pieces.size()));
  std::vector<std::thread> pool;
  if (opt.progress) {
    // Every worker gets a thread; the calling thread only reports progress.
    std::mutex mu;
    std::condition_variable cv;
    unsigned finished = 0;
    for (unsigned i = 0; i < nthreads; ++i) {
      pool.emplace_back([&] {
        worker();
        std::lock_guard lk(mu);
        ++finished;
        cv.notify_one();
      });
    }
    std::unique_lock lk(mu);
    while (finished < nthreads) {
      lk.unlock();
      opt.progress(done.load(), total);
      lk.lock();
      cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return finished == nthreads; });
    }
  } else {
    for (unsigned i = 1; i < nthreads; ++i)
      pool.emplace_back(worker);
    worker();
  }
  for (auto& t : pool)
    t.join();
  if (failed) return error{errc::io, err_text, no_offset};
  if (opt.progress) opt.progress(total, total);

  // v2 roots: files above one piece hash their layer; smaller files already have it.
  const sha256_digest piece_pad = merkle::pad_hash(merkle::log2_exact(bpp));
  if (v2) {
    for (auto& f : files) {
      if (f.size == 0) continue;
      f.root = f.size > plen ? merkle::root(f.layer, piece_pad) : f.layer[0];
    }
  }

  // Assemble the info dictionary.
  using bencode::dict;
  using bencode::list;
  dict info;
  info["name"] = name;
  info["piece length"] = static_cast<std::int64_t>(plen);
  if (opt.is_private) info["private"] = 1;
  if (!opt.source.empty()) info["source"] = opt.source;
  if (v1) {
    info["pieces"] = v1_hashes;
    if (multi) {
      list fl;
      // No pad after the last file with data: the final piece is short, as its v1 hash is.
      std::size_t last_with_data = 0;
      for (std::size_t i = 0; i < files.size(); ++i) {
        if (files[i].size > 0) last_with_data = i;
      }
      for (std::size_t i = 0; i < files.size(); ++i) {
        const auto& f = files[i];
        dict fd;
        fd["length"] = static_cast<std::int64_t>(f.size);
        list pl;
        for (const auto& c : f.comps)
          pl.emplace_back(c);
        fd["path"] = std::move(pl);
        if (f.symlink) {
          fd["attr"] = "l";
          list target;
          for (const auto& c : f.link)
            target.emplace_back(c);
          fd["symlink path"] = std::move(target);
        } else if (f.executable) {
          fd["attr"] = "x";
        }
        fl.emplace_back(std::move(fd));
        if (v2 && i < last_with_data && f.size % plen != 0) {
          const std::uint64_t pad = plen - f.size % plen;
          dict pd;
          pd["attr"] = "p";
          pd["length"] = static_cast<std::int64_t>(pad);
          pd["path"] = list{".pad", std::to_string(pad)};
          fl.emplace_back(std::move(pd));
        }
      }
      info["files"] = std::move(fl);
    } else {
      info["length"] = static_cast<std::int64_t>(files[0].size);
      if (files[0].executable) info["attr"] = "x";
    }
  }
  dict layers;
  if (v2) {
    info["meta version"] = 2;
    dict tree;
    for (const auto& f : files) {
      dict* d = &tree;
      for (const auto& c : f.comps) {
        auto& sub = (*d)[c];
        if (!std::holds_alternative<dict>(sub.v)) sub = dict{};
        d = &std::get<dict>(sub.v);
      }
      dict leaf;
      if (f.symlink) {
        // As libtorrent writes them: no length (BEP 47 allows leaving it out), no root.
        leaf["attr"] = "l";
        list target;
        for (const auto& c : f.link)
          target.emplace_back(c);
        leaf["symlink path"] = std::move(target);
        (*d)[""] = std::move(leaf);
        continue;
      }
      leaf["length"] = static_cast<std::int64_t>(f.size);
      if (f.size > 0) leaf["pieces root"] = std::string(as_view(f.root));
      if (f.executable) leaf["attr"] = "x";
      (*d)[""] = std::move(leaf);
      if (f.size > plen) {
        std::string bytes;
        bytes.reserve(f.layer.size() * 32);
        for (const auto& h : f.layer)
          bytes.append(as_view(h));
        layers[std::string(as_view(f.root))] = std::move(bytes);
      }
    }
    info["file tree"] = std::move(tree);
  }

  dict top;
  top["info"] = std::move(info);
  if (v2 && !layers.empty()) top["piece layers"] = std::move(layers);
  if (!opt.tracker_tiers.empty()) {
    top["announce"] = opt.tracker_tiers[0][0];
    std::size_t count = 0;
    for (const auto& t : opt.tracker_tiers)
      count += t.size();
    if (count > 1) {
      list al;
      for (const auto& t : opt.tracker_tiers) {
        list tier;
        for (const auto& u : t)
          tier.emplace_back(u);
        al.emplace_back(std::move(tier));
      }
      top["announce-list"] = std::move(al);
    }
  }
  if (!opt.web_seeds.empty()) {
    if (opt.web_seeds.size() == 1) {
      top["url-list"] = opt.web_seeds[0];
    } else {
      list ul;
      for (const auto& w : opt.web_seeds)
        ul.emplace_back(w);
      top["url-list"] = std::move(ul);
    }
  }
  if (!opt.comment.empty()) top["comment"] = opt.comment;
  if (!opt.created_by.empty()) top["created by"] = opt.created_by;
  const std::int64_t date = opt.creation_date.value_or(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (date >= 0) top["creation date"] = date;
  return bencode::encode(top);
}

}  // namespace shoal
