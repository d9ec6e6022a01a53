#include "sync/index.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "core/bencode.hpp"

namespace shoal::sync {

std::string_view to_string(entry_type t) {
  switch (t) {
    case entry_type::file:
      return "file";
    case entry_type::dir:
      return "dir";
    case entry_type::symlink:
      return "symlink";
  }
  return "?";
}

std::uint32_t block_size_for(std::uint64_t size) {
  std::uint32_t bs = min_block_size;
  while (bs < max_block_size && block_count(size, bs) > target_blocks)
    bs *= 2;
  return bs;
}

std::uint64_t block_count(std::uint64_t size, std::uint32_t block_size) {
  return block_size == 0 ? 0 : size / block_size + (size % block_size != 0 ? 1 : 0);
}

void bump(version_vector& v, std::string_view device) {
  auto it = std::lower_bound(v.begin(), v.end(), device,
                             [](const version_entry& e, std::string_view d) { return e.device < d; });
  if (it != v.end() && it->device == device) {
    ++it->counter;
  } else {
    v.insert(it, version_entry{std::string(device), 1});
  }
}

ordering compare(const version_vector& a, const version_vector& b) {
  bool a_more = false;
  bool b_more = false;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].device < b[j].device)) {
      a_more = true;
      ++i;
    } else if (i == a.size() || b[j].device < a[i].device) {
      b_more = true;
      ++j;
    } else {
      if (a[i].counter > b[j].counter) a_more = true;
      if (b[j].counter > a[i].counter) b_more = true;
      ++i;
      ++j;
    }
  }
  if (a_more && b_more) return ordering::concurrent;
  if (a_more) return ordering::after;
  if (b_more) return ordering::before;
  return ordering::equal;
}

std::string path_key(std::string_view path) {
  std::string k(path);
  std::replace(k.begin(), k.end(), '/', '\0');
  return k;
}

std::string key_path(std::string_view key) {
  std::string p(key);
  std::replace(p.begin(), p.end(), '\0', '/');
  return p;
}

// ---- the canonical encoding -----------------------------------------------------------

namespace {

bencode::value version_value(const version_vector& v) {
  bencode::list l;
  l.reserve(v.size());
  for (const auto& e : v) {
    bencode::list pair;
    pair.reserve(2);
    pair.emplace_back(e.device);
    pair.emplace_back(static_cast<std::int64_t>(e.counter));
    l.emplace_back(std::move(pair));
  }
  return l;
}

error bad_record(const std::string& what) {
  return error{errc::bad_metainfo, "sync record: " + what};
}

}  // namespace

std::string encode_record(const record& r) {
  bencode::dict d;
  d["blocks"] = r.blocks;
  d["bsize"] = static_cast<std::int64_t>(r.block_size);
  d["by"] = r.modified_by;
  d["deleted"] = r.deleted ? 1 : 0;
  d["mode"] = static_cast<std::int64_t>(r.mode);
  d["mtime"] = r.mtime_ns;
  d["path"] = r.path;
  d["size"] = static_cast<std::int64_t>(r.size);
  d["target"] = r.target;
  d["type"] = static_cast<std::int64_t>(r.type);
  d["version"] = version_value(r.version);
  return bencode::encode(d);
}

std::string signed_bytes(std::string_view canonical) {
  std::string s("shoal-sync-record", sizeof("shoal-sync-record"));  // with its NUL: a fixed-length domain
  s.append(canonical);
  return s;
}

void sign_record(record& r, const folder_key& key) {
  const auto sig = key.sign(signed_bytes(encode_record(r)));
  r.signature.assign(reinterpret_cast<const char*>(sig.data()), sig.size());
  r.local_only = false;
}

result<bool> validate_path(std::string_view path) {
  if (path.empty()) return bad_record("empty path");
  if (path.size() > max_path_bytes) {
    return bad_record("path of " + std::to_string(path.size()) + " bytes (at most " + std::to_string(max_path_bytes) +
                      ")");
  }
  if (path.find('\0') != std::string_view::npos) return bad_record("path has a NUL byte");
  std::size_t start = 0;
  bool first = true;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string_view comp = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (comp.empty()) return bad_record("path has an empty component (leading, trailing or double '/')");
    if (comp == "." || comp == "..") return bad_record("path has a '.' or '..' component");
    if (comp.size() > max_name_bytes) {
      return bad_record("path component of " + std::to_string(comp.size()) + " bytes (at most " +
                        std::to_string(max_name_bytes) + ")");
    }
    if (first && comp == ".shoal") return bad_record("path is inside .shoal/, which is never synced");
    first = false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

result<bool> validate_record(const record& r) {
  if (auto p = validate_path(r.path); !p) return p.err();
  if (r.mode > max_mode) return bad_record("mode " + std::to_string(r.mode) + " has bits past 07777");
  if (r.modified_by.empty() || r.modified_by.size() > max_device_id_bytes) {
    return bad_record("device id of " + std::to_string(r.modified_by.size()) + " bytes (1 to " +
                      std::to_string(max_device_id_bytes) + ")");
  }
  if (r.version.empty()) return bad_record("empty version vector");
  if (r.version.size() > max_version_entries) {
    return bad_record("version vector of " + std::to_string(r.version.size()) + " entries (at most " +
                      std::to_string(max_version_entries) + ")");
  }
  for (std::size_t i = 0; i < r.version.size(); ++i) {
    const auto& e = r.version[i];
    if (e.device.empty() || e.device.size() > max_device_id_bytes) return bad_record("version vector: bad device id");
    if (e.counter == 0 || e.counter > static_cast<std::uint64_t>(INT64_MAX))
      return bad_record("version vector: counter out of range");
    if (i > 0 && !(r.version[i - 1].device < e.device))
      return bad_record("version vector: devices not in order or repeated");
  }
  if (r.type != entry_type::symlink || r.deleted) {
    if (!r.target.empty()) return bad_record("a target on something that is not a live symlink");
  } else {
    if (r.target.empty()) return bad_record("symlink without a target");
    if (r.target.size() > max_target_bytes) {
      return bad_record("symlink target of " + std::to_string(r.target.size()) + " bytes (at most " +
                        std::to_string(max_target_bytes) + ")");
    }
    if (r.target.find('\0') != std::string::npos) return bad_record("symlink target has a NUL byte");
  }
  if (r.type == entry_type::file && !r.deleted) {
    if (r.size > max_file_size) return bad_record("file size " + std::to_string(r.size) + " past the limit");
    const std::uint32_t bs = r.block_size;
    if (bs < min_block_size || bs > max_block_size || (bs & (bs - 1)) != 0) {
      return bad_record("block size " + std::to_string(bs) + " is not a power of two from 128 KiB to 16 MiB");
    }
    const std::uint64_t n = block_count(r.size, bs);
    if (n > max_blocks) return bad_record(std::to_string(n) + " blocks (at most " + std::to_string(max_blocks) + ")");
    if (r.blocks.size() != n * 32) {
      return bad_record("block list of " + std::to_string(r.blocks.size()) + " bytes for " + std::to_string(n) +
                        " blocks");
    }
  } else {
    if (r.size != 0 || r.block_size != 0 || !r.blocks.empty())
      return bad_record("size or blocks on something that is not a live file");
  }
  return true;
}

result<record> decode_record(std::string_view canonical, std::string_view sig, const public_key& folder) {
  if (canonical.size() > max_record_bytes) {
    return bad_record(std::to_string(canonical.size()) + " bytes (at most " + std::to_string(max_record_bytes) + ")");
  }
  if (sig.size() != signature_bytes) return bad_record("signature of " + std::to_string(sig.size()) + " bytes, not 64");
  if (!verify(folder, signed_bytes(canonical), sig)) {
    return error{errc::invalid_argument,
                 "sync record: the signature does not verify with the folder key (forged or "
                 "changed on the way)"};
  }
  bencode::limits lim;
  lim.depth = 3;
  lim.tokens = 64 + 3 * max_version_entries;
  auto doc = bencode::decode(canonical, bencode::mode::strict, lim);
  if (!doc) return bad_record(doc.err().message());
  const auto root = doc->root();
  if (!root.is_dict()) return bad_record("not a dictionary");
  static constexpr std::string_view keys[] = {"blocks", "bsize", "by",     "deleted", "mode",   "mtime",
                                              "path",   "size",  "target", "type",    "version"};
  if (root.size() != std::size(keys)) return bad_record("expected exactly the keys of a record");
  for (auto k : keys) {
    if (!root.find(k)) return bad_record("missing '" + std::string(k) + "'");
  }
  auto str = [&](std::string_view k, std::string& out) -> bool {
    const auto n = root.find(k);
    if (!n.is_string()) return false;
    out = std::string(n.as_string());
    return true;
  };
  auto num = [&](std::string_view k, std::int64_t lo, std::int64_t hi, std::int64_t& out) -> bool {
    const auto n = root.find(k);
    if (!n.is_int() || n.as_int() < lo || n.as_int() > hi) return false;
    out = n.as_int();
    return true;
  };
  record r;
  std::int64_t v = 0;
  if (!str("path", r.path)) return bad_record("'path' is not a string");
  if (!str("target", r.target)) return bad_record("'target' is not a string");
  if (!str("blocks", r.blocks)) return bad_record("'blocks' is not a string");
  if (!str("by", r.modified_by)) return bad_record("'by' is not a string");
  if (!num("type", 0, 2, v)) return bad_record("'type' is not 0, 1 or 2");
  r.type = static_cast<entry_type>(v);
  if (!num("deleted", 0, 1, v)) return bad_record("'deleted' is not 0 or 1");
  r.deleted = v == 1;
  if (!num("size", 0, static_cast<std::int64_t>(max_file_size), v)) return bad_record("'size' out of range");
  r.size = static_cast<std::uint64_t>(v);
  if (!num("bsize", 0, max_block_size, v)) return bad_record("'bsize' out of range");
  r.block_size = static_cast<std::uint32_t>(v);
  if (!num("mode", 0, max_mode, v)) return bad_record("'mode' out of range");
  r.mode = static_cast<std::uint32_t>(v);
  if (!num("mtime", INT64_MIN, INT64_MAX, v)) return bad_record("'mtime' is not an integer");
  r.mtime_ns = v;
  const auto ver = root.find("version");
  if (!ver.is_list()) return bad_record("'version' is not a list");
  if (ver.size() > max_version_entries) return bad_record("version vector past " + std::to_string(max_version_entries));
  for (const auto e : ver) {
    if (!e.is_list() || e.size() != 2) return bad_record("'version' entry is not [device, counter]");
    auto it = e.begin();
    const auto dev = *it;
    ++it;
    const auto cnt = *it;
    if (!dev.is_string() || !cnt.is_int() || cnt.as_int() <= 0)
      return bad_record("'version' entry is not [device, counter > 0]");
    r.version.push_back(version_entry{std::string(dev.as_string()), static_cast<std::uint64_t>(cnt.as_int())});
  }
  if (auto ok = validate_record(r); !ok) return ok.err();
  // Strict bencode plus a known key set already make the encoding unique; checking the
  // round trip too keeps "canonical" one definition: encode_record.
  if (encode_record(r) != canonical) return bad_record("not the canonical encoding");
  r.signature = std::string(sig);
  return r;
}

// ---- the SQLite database --------------------------------------------------------------

namespace {

class stmt {
 public:
  stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK) {
      throw index_error(std::string("sync index: ") + sqlite3_errmsg(db));
    }
  }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;
  ~stmt() { sqlite3_finalize(s_); }

  stmt& reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return *this;
  }
  stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  stmt& bind_blob(int i, std::string_view v) {
    check(sqlite3_bind_blob64(s_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC));
    return *this;
  }
  stmt& bind_text(int i, std::string_view v) {
    check(sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw index_error(std::string("sync index: ") + sqlite3_errmsg(db_));
  }
  void run() {
    step();
    reset();
  }
  [[nodiscard]] std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  [[nodiscard]] std::string blob(int col) const {
    const void* p = sqlite3_column_blob(s_, col);
    const int n = sqlite3_column_bytes(s_, col);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), static_cast<std::size_t>(n));
  }
  [[nodiscard]] bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw index_error(std::string("sync index: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg != nullptr ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    throw index_error("sync index: " + m);
  }
}

// Version vectors in the database: the same bencode list as in the canonical encoding.
std::string encode_version(const version_vector& v) {
  return bencode::encode(version_value(v));
}

version_vector decode_version(std::string_view s) {
  version_vector v;
  auto doc = bencode::decode(s, bencode::mode::strict);
  if (!doc || !doc->root().is_list()) throw index_error("sync index: a stored version vector is corrupt");
  for (const auto e : doc->root()) {
    if (!e.is_list() || e.size() != 2) throw index_error("sync index: a stored version vector is corrupt");
    auto it = e.begin();
    const auto dev = *it;
    ++it;
    v.push_back(version_entry{std::string(dev.as_string()), static_cast<std::uint64_t>((*it).as_int())});
  }
  return v;
}

constexpr const char* record_columns =
    "k, seq, type, size, mtime, mode, target, bsize, blocks, version, deleted, modified_by, signature, local_only, "
    "dev, "
    "ino";

record read_record(const stmt& s) {
  record r;
  r.path = key_path(s.blob(0));
  r.sequence = static_cast<std::uint64_t>(s.i64(1));
  r.type = static_cast<entry_type>(s.i64(2));
  r.size = static_cast<std::uint64_t>(s.i64(3));
  r.mtime_ns = s.i64(4);
  r.mode = static_cast<std::uint32_t>(s.i64(5));
  r.target = s.blob(6);
  r.block_size = static_cast<std::uint32_t>(s.i64(7));
  r.blocks = s.blob(8);
  r.version = decode_version(s.blob(9));
  r.deleted = s.i64(10) != 0;
  r.modified_by = s.blob(11);
  r.signature = s.blob(12);
  r.local_only = s.i64(13) != 0;
  r.dev = static_cast<std::uint64_t>(s.i64(14));
  r.ino = static_cast<std::uint64_t>(s.i64(15));
  return r;
}

}  // namespace

struct index::impl {
  sqlite3* db = nullptr;
  std::unique_ptr<stmt> get, put, since, heads_first, heads_after, peer_get, peer_set, meta_get, meta_set, inode_set;
  ~impl() {
    inode_set.reset();
    get.reset();
    put.reset();
    since.reset();
    heads_first.reset();
    heads_after.reset();
    peer_get.reset();
    peer_set.reset();
    meta_get.reset();
    meta_set.reset();
    if (db != nullptr) sqlite3_close_v2(db);
  }
};

index::index(std::unique_ptr<impl> p) : p_(std::move(p)) {}
index::index(index&&) noexcept = default;
index& index::operator=(index&&) noexcept = default;
index::~index() = default;

result<index> index::open(const std::filesystem::path& file) {
  auto p = std::make_unique<impl>();
  const int rc =
      sqlite3_open_v2(file.c_str(), &p->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK) {
    std::string m = p->db != nullptr ? sqlite3_errmsg(p->db) : "out of memory";
    return error{errc::io, file.string() + ": " + m};
  }
  try {
    sqlite3_busy_timeout(p->db, 5000);
    exec(p->db, "PRAGMA journal_mode=WAL");
    // WAL with synchronous=NORMAL: a power cut may lose the last commits, never corrupts.
    exec(p->db, "PRAGMA synchronous=NORMAL");
    exec(p->db,
         "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
         "CREATE TABLE IF NOT EXISTS files ("
         " k BLOB PRIMARY KEY, seq INTEGER NOT NULL, type INTEGER NOT NULL, size INTEGER NOT NULL,"
         " mtime INTEGER NOT NULL, mode INTEGER NOT NULL, target BLOB NOT NULL, bsize INTEGER NOT NULL,"
         " blocks BLOB NOT NULL, version BLOB NOT NULL, deleted INTEGER NOT NULL, modified_by BLOB NOT NULL,"
         " signature BLOB NOT NULL, local_only INTEGER NOT NULL, dev INTEGER NOT NULL DEFAULT 0,"
         " ino INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
         "CREATE UNIQUE INDEX IF NOT EXISTS files_seq ON files(seq);"
         "CREATE TABLE IF NOT EXISTS peers (device TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;"
         "INSERT OR IGNORE INTO meta VALUES ('schema', '1');");
    {
      // An index made before the scanner kept inodes gets the two local columns (0: unknown).
      stmt has(p->db, "SELECT COUNT(*) FROM pragma_table_info('files') WHERE name = 'ino'");
      if (has.step() && has.i64(0) == 0) {
        exec(p->db,
             "ALTER TABLE files ADD COLUMN dev INTEGER NOT NULL DEFAULT 0;"
             "ALTER TABLE files ADD COLUMN ino INTEGER NOT NULL DEFAULT 0;");
      }
    }
    const std::string cols = record_columns;
    p->get = std::make_unique<stmt>(p->db, ("SELECT " + cols + " FROM files WHERE k = ?1").c_str());
    p->put = std::make_unique<stmt>(p->db, ("INSERT OR REPLACE INTO files (" + cols +
                                            ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)")
                                               .c_str());
    p->since =
        std::make_unique<stmt>(p->db, ("SELECT " + cols + " FROM files WHERE seq > ?1 ORDER BY seq LIMIT ?2").c_str());
    p->heads_first = std::make_unique<stmt>(
        p->db,
        "SELECT k, type, size, mtime, mode, target, deleted, seq, local_only, dev, ino FROM files ORDER BY k LIMIT ?1");
    p->heads_after = std::make_unique<stmt>(p->db,
                                            "SELECT k, type, size, mtime, mode, target, deleted, seq, local_only, dev, "
                                            "ino FROM files WHERE k > ?1 ORDER BY k "
                                            "LIMIT "
                                            "?2");
    p->inode_set = std::make_unique<stmt>(p->db, "UPDATE files SET dev = ?2, ino = ?3 WHERE k = ?1");
    p->peer_get = std::make_unique<stmt>(p->db, "SELECT last_seq FROM peers WHERE device = ?1");
    p->peer_set = std::make_unique<stmt>(p->db, "INSERT OR REPLACE INTO peers VALUES (?1, ?2)");
    p->meta_get = std::make_unique<stmt>(p->db, "SELECT value FROM meta WHERE name = ?1");
    p->meta_set = std::make_unique<stmt>(p->db, "INSERT OR REPLACE INTO meta VALUES (?1, ?2)");
    stmt max(p->db, "SELECT COALESCE(MAX(seq), 0) FROM files");
    max.step();
    index ix(std::move(p));
    ix.last_seq_ = static_cast<std::uint64_t>(max.i64(0));
    return ix;
  } catch (const index_error& e) {
    return error{errc::io, file.string() + ": " + e.what()};
  }
}

std::optional<record> index::get(std::string_view path) const {
  const std::string k = path_key(path);
  auto& s = *p_->get;
  s.reset().bind_blob(1, k);
  std::optional<record> out;
  if (s.step()) out = read_record(s);
  s.reset();
  return out;
}

std::uint64_t index::put(record& r) {
  const std::uint64_t seq = last_seq_ + 1;
  const std::string k = path_key(r.path);
  const std::string ver = encode_version(r.version);
  auto& s = *p_->put;
  s.reset()
      .bind_blob(1, k)
      .bind(2, static_cast<std::int64_t>(seq))
      .bind(3, static_cast<std::int64_t>(r.type))
      .bind(4, static_cast<std::int64_t>(r.size))
      .bind(5, r.mtime_ns)
      .bind(6, r.mode)
      .bind_blob(7, r.target)
      .bind(8, r.block_size)
      .bind_blob(9, r.blocks)
      .bind_blob(10, ver)
      .bind(11, r.deleted ? 1 : 0)
      .bind_blob(12, r.modified_by)
      .bind_blob(13, r.signature)
      .bind(14, r.local_only ? 1 : 0)
      .bind(15, static_cast<std::int64_t>(r.dev))
      .bind(16, static_cast<std::int64_t>(r.ino));
  s.run();
  last_seq_ = seq;
  r.sequence = seq;
  return seq;
}

std::vector<record> index::changes_since(std::uint64_t after, std::size_t limit) const {
  std::vector<record> out;
  auto& s = *p_->since;
  s.reset().bind(1, static_cast<std::int64_t>(after)).bind(2, static_cast<std::int64_t>(limit));
  while (s.step())
    out.push_back(read_record(s));
  s.reset();
  return out;
}

std::vector<record_head> index::heads_after(std::string_view after_key, std::size_t limit) const {
  std::vector<record_head> out;
  out.reserve(limit);
  auto& s = after_key.empty() ? *p_->heads_first : *p_->heads_after;
  s.reset();
  if (after_key.empty()) {
    s.bind(1, static_cast<std::int64_t>(limit));
  } else {
    s.bind_blob(1, after_key).bind(2, static_cast<std::int64_t>(limit));
  }
  while (s.step()) {
    record_head h;
    h.key = s.blob(0);
    h.type = static_cast<entry_type>(s.i64(1));
    h.size = static_cast<std::uint64_t>(s.i64(2));
    h.mtime_ns = s.i64(3);
    h.mode = static_cast<std::uint32_t>(s.i64(4));
    h.target = s.blob(5);
    h.deleted = s.i64(6) != 0;
    h.sequence = static_cast<std::uint64_t>(s.i64(7));
    h.local_only = s.i64(8) != 0;
    h.dev = static_cast<std::uint64_t>(s.i64(9));
    h.ino = static_cast<std::uint64_t>(s.i64(10));
    out.push_back(std::move(h));
  }
  s.reset();
  return out;
}

void index::set_inode(std::string_view path, std::uint64_t dev, std::uint64_t ino) {
  const std::string k = path_key(path);
  p_->inode_set->reset()
      .bind_blob(1, k)
      .bind(2, static_cast<std::int64_t>(dev))
      .bind(3, static_cast<std::int64_t>(ino))
      .run();
}

std::uint64_t index::peer_sequence(std::string_view device) const {
  auto& s = *p_->peer_get;
  s.reset().bind_text(1, device);
  std::uint64_t v = s.step() ? static_cast<std::uint64_t>(s.i64(0)) : 0;
  s.reset();
  return v;
}

void index::set_peer_sequence(std::string_view device, std::uint64_t seq) {
  p_->peer_set->reset().bind_text(1, device).bind(2, static_cast<std::int64_t>(seq)).run();
}

std::optional<std::string> index::meta(std::string_view name) const {
  auto& s = *p_->meta_get;
  s.reset().bind_text(1, name);
  std::optional<std::string> v;
  if (s.step()) v = s.blob(0);
  s.reset();
  return v;
}

void index::set_meta(std::string_view name, std::string_view value) {
  p_->meta_set->reset().bind_text(1, name).bind_text(2, value).run();
}

index_totals index::totals() const {
  stmt s(p_->db,
         "SELECT"
         " COALESCE(SUM(deleted = 0 AND type = 0), 0), COALESCE(SUM(deleted = 0 AND type = 1), 0),"
         " COALESCE(SUM(deleted = 0 AND type = 2), 0), COALESCE(SUM(deleted), 0),"
         " COALESCE(SUM(CASE WHEN deleted = 0 AND type = 0 THEN size ELSE 0 END), 0) FROM files");
  index_totals t;
  if (s.step()) {
    t.files = static_cast<std::uint64_t>(s.i64(0));
    t.dirs = static_cast<std::uint64_t>(s.i64(1));
    t.symlinks = static_cast<std::uint64_t>(s.i64(2));
    t.deleted = static_cast<std::uint64_t>(s.i64(3));
    t.bytes = static_cast<std::uint64_t>(s.i64(4));
  }
  return t;
}

void index::begin() {
  exec(p_->db, "BEGIN IMMEDIATE");
}
void index::commit() {
  exec(p_->db, "COMMIT");
}
void index::rollback() {
  exec(p_->db, "ROLLBACK");
}

}  // namespace shoal::sync
