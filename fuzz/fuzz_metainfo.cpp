// Fuzz target for the .torrent parser (v1, v2, hybrid).
//
// Checks, for every input:
//  - parse_metainfo never crashes; an error has a category, a message and, if it has an
//    offset, one inside the input;
//  - on success, every field is consistent: info-hashes are the SHA-1/SHA-256 of the
//    info dictionary's bytes, which appear verbatim in the input; piece counts match the
//    files' layout; files do not overlap; v2 files with data start on a piece boundary
//    and have a pieces root; every kept piece layer belongs to a file and has whole
//    hashes;
//  - every path shown (the name, each file path, each symlink target) is safe to join
//    to a download folder: not absolute, no "." or ".." or empty component, no NUL or
//    other control byte, no backslash, no drive letter, valid UTF-8, each component at
//    most max_component_bytes long; file paths are unique and start with the name in a
//    multi-file torrent;
//  - the magnet link made from the torrent parses again with the same info-hashes,
//    name and web seeds.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.hpp"
#include "core/hash.hpp"
#include "core/magnet.hpp"
#include "core/metainfo.hpp"
#include "core/text.hpp"

namespace {

bool is_drive_letter(std::string_view c) {
  return c.size() >= 2 && c[1] == ':' && ((c[0] >= 'A' && c[0] <= 'Z') || (c[0] >= 'a' && c[0] <= 'z'));
}

// A '/'-separated relative path that can be joined safely to a folder.
void check_path(std::string_view p) {
  FUZZ_CHECK(!p.empty());
  FUZZ_CHECK(p.front() != '/');
  FUZZ_CHECK(p.find('\0') == std::string_view::npos);
  FUZZ_CHECK(shoal::is_valid_utf8(p));
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = p.find('/', start);
    const std::string_view c =
        p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    FUZZ_CHECK(!c.empty());
    FUZZ_CHECK(c != "." && c != "..");
    FUZZ_CHECK(c.find('\\') == std::string_view::npos);
    FUZZ_CHECK(!is_drive_letter(c));
    FUZZ_CHECK(c.size() <= shoal::max_component_bytes);
    for (char ch : c) {
      const auto u = static_cast<unsigned char>(ch);
      FUZZ_CHECK(u >= 0x20 && u != 0x7f);
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

void check_text(std::string_view s) {
  FUZZ_CHECK(shoal::is_valid_utf8(s));
}

void check_magnet(const shoal::metainfo& m) {
  const shoal::magnet_link link = shoal::magnet_from(m);
  const std::string uri = shoal::to_uri(link);
  auto back = shoal::parse_magnet(uri);
  if (uri.size() > shoal::max_magnet_length) {
    // Very long tracker lists do not fit in a magnet link; the limit must be the reason.
    FUZZ_CHECK(!back && back.err().code == shoal::errc::limit_exceeded);
    return;
  }
  if (!back) {
    // More tracker and web seed parameters than a magnet link may carry.
    FUZZ_CHECK(back.err().code == shoal::errc::limit_exceeded);
    return;
  }
  FUZZ_CHECK(back->info_hash_v1 == m.info_hash_v1);
  FUZZ_CHECK(back->info_hash_v2 == m.info_hash_v2);
  FUZZ_CHECK(back->name == m.name);
  FUZZ_CHECK(back->web_seeds == m.web_seeds);
  std::set<std::string> want;
  for (const auto& tier : m.tracker_tiers)
    want.insert(tier.begin(), tier.end());
  FUZZ_CHECK(std::set<std::string>(back->trackers.begin(), back->trackers.end()) == want);
}

void check_metainfo(std::string_view in, const shoal::metainfo& m) {
  using shoal::torrent_version;
  FUZZ_CHECK(m.has_v1() || m.has_v2());
  FUZZ_CHECK((m.version == torrent_version::v1) == (m.has_v1() && !m.has_v2()));
  FUZZ_CHECK((m.version == torrent_version::v2) == (!m.has_v1() && m.has_v2()));
  FUZZ_CHECK((m.version == torrent_version::hybrid) == (m.has_v1() && m.has_v2()));
  FUZZ_CHECK(!shoal::version_name(m.version).empty());

  // The info dictionary is taken verbatim from the input and hashed as such.
  FUZZ_CHECK(!m.info_bytes.empty() && m.info_bytes.front() == 'd' && m.info_bytes.back() == 'e');
  FUZZ_CHECK(in.find(m.info_bytes) != std::string_view::npos);
  if (m.has_v1()) FUZZ_CHECK(*m.info_hash_v1 == shoal::sha1(m.info_bytes));
  if (m.has_v2()) FUZZ_CHECK(*m.info_hash_v2 == shoal::sha256(m.info_bytes));

  FUZZ_CHECK(m.piece_length > 0 && m.piece_length <= shoal::max_piece_length);
  if (m.has_v2()) {
    FUZZ_CHECK(m.piece_length >= shoal::min_v2_piece_length);
    FUZZ_CHECK((m.piece_length & (m.piece_length - 1)) == 0);
  }
  FUZZ_CHECK(m.num_pieces <= shoal::max_pieces);

  check_path(m.name);
  FUZZ_CHECK(m.name.find('/') == std::string::npos);

  FUZZ_CHECK(!m.files.empty());
  if (!m.multi_file) {
    FUZZ_CHECK(m.files.size() == 1);
    FUZZ_CHECK(m.files[0].path == m.name);
  }
  std::set<std::string> paths;
  std::set<shoal::sha256_digest> roots;
  std::uint64_t end = 0;
  std::uint64_t total = 0;
  for (const shoal::file_entry& f : m.files) {
    check_path(f.path);
    if (m.multi_file)
      FUZZ_CHECK(f.path.size() > m.name.size() + 1 && f.path.compare(0, m.name.size() + 1, m.name + "/") == 0);
    if (!f.pad) FUZZ_CHECK(paths.insert(f.path).second);
    if (f.symlink) {
      if (!f.symlink_target.empty()) check_path(f.symlink_target);
    } else {
      FUZZ_CHECK(f.symlink_target.empty());
    }
    FUZZ_CHECK(f.size <= shoal::max_total_size);
    FUZZ_CHECK(f.offset >= end);
    FUZZ_CHECK(f.offset <= shoal::max_total_size - f.size);
    if (m.has_v1()) FUZZ_CHECK(f.offset == end);  // v1 packs files back to back
    end = f.offset + f.size;
    if (!f.pad) total += f.size;
    if (m.has_v2() && f.size > 0 && !f.pad) FUZZ_CHECK(f.offset % m.piece_length == 0);
    if (m.has_v2() && f.size > 0 && !f.pad && !f.symlink) FUZZ_CHECK(f.pieces_root.has_value());
    if (!m.has_v2()) FUZZ_CHECK(!f.pieces_root.has_value());
    if (f.pieces_root) roots.insert(*f.pieces_root);
  }
  FUZZ_CHECK(total == m.total_size);
  FUZZ_CHECK(m.num_pieces == (end + m.piece_length - 1) / m.piece_length);
  if (m.has_v1()) {
    FUZZ_CHECK(m.v1_piece_hashes.size() == m.num_pieces * 20);
  } else {
    FUZZ_CHECK(m.v1_piece_hashes.empty());
  }

  for (const auto& [root, layer] : m.piece_layers) {
    FUZZ_CHECK(m.has_v2());
    FUZZ_CHECK(roots.count(root) == 1);
    FUZZ_CHECK(!layer.empty() && layer.size() % 32 == 0);
  }

  for (const auto& tier : m.tracker_tiers) {
    FUZZ_CHECK(!tier.empty());
    for (const auto& t : tier) {
      FUZZ_CHECK(!t.empty());
      check_text(t);
    }
  }
  for (const auto& w : m.web_seeds) {
    FUZZ_CHECK(!w.empty());
    check_text(w);
  }
  check_text(m.comment);
  check_text(m.created_by);
  check_text(m.source);
  for (const auto& w : m.warnings)
    FUZZ_CHECK(!w.empty());
  (void)m.is_private;
  (void)m.creation_date;

  check_magnet(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = shoal::parse_metainfo(in);
  if (!r) {
    const shoal::error& e = r.err();
    FUZZ_CHECK(e.code == shoal::errc::syntax || e.code == shoal::errc::limit_exceeded ||
               e.code == shoal::errc::bad_metainfo);
    FUZZ_CHECK(!e.detail.empty());
    FUZZ_CHECK(e.offset == shoal::no_offset || e.offset <= size);
    return 0;
  }
  check_metainfo(in, *r);
  return 0;
}
