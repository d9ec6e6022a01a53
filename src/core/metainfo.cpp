#include "core/metainfo.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <unordered_map>

#include "core/bencode.hpp"
#include "core/merkle.hpp"
#include "core/text.hpp"

namespace shoal {

namespace {

using bencode::node;

error bad(const std::string& field, const std::string& why, const node& at) {
  return error{errc::bad_metainfo, field + ": " + why, at ? at.offset() : no_offset};
}

constexpr std::size_t max_name_in_message = 96;
constexpr std::size_t max_path_in_message = 400;

// A name as shown in a message: valid UTF-8, at most max_name_in_message bytes of it.
std::string cap_name(std::string_view n) {
  if (n.size() <= max_name_in_message) return repair_utf8(n);
  return repair_utf8(n.substr(0, max_name_in_message)) + "...";
}

// A path as shown in a message, capped per component and in all.
std::string describe_path(const std::vector<std::string_view>& comps) {
  std::string s;
  for (auto c : comps) {
    if (!s.empty()) s += '/';
    s += cap_name(c);
    if (s.size() > max_path_in_message) return s + "/...";
  }
  return s;
}

// A file as listed in the torrent, before sanitising.
struct raw_file {
  std::vector<std::string_view> comps;
  std::uint64_t size = 0;
  bool pad = false, exec = false, hidden = false, link = false;
  std::vector<std::string_view> link_comps;
  std::optional<sha256_digest> root;
  node where;
};

void apply_attr(raw_file& f, std::string_view attr) {
  for (char c : attr) {
    if (c == 'p') f.pad = true;
    if (c == 'x') f.exec = true;
    if (c == 'h') f.hidden = true;
    if (c == 'l') f.link = true;
  }
}

// Reads a list of path strings; an error if it is not a list of strings.
std::optional<error> read_path(const node& n, const std::string& field, std::vector<std::string_view>& out) {
  if (!n.is_list()) return bad(field, "expected a list of strings", n);
  for (node c : n) {
    if (!c.is_string()) return bad(field, "expected a list of strings", c);
    out.push_back(c.as_string());
  }
  return std::nullopt;
}

std::optional<error> read_length(const node& n, const std::string& field, std::uint64_t& out) {
  if (!n) return bad(field, "missing", n);
  if (!n.is_int()) return bad(field, "expected an integer", n);
  if (n.as_int() < 0) return bad(field, "negative length " + std::to_string(n.as_int()), n);
  out = static_cast<std::uint64_t>(n.as_int());
  if (out > max_total_size) return bad(field, "length " + std::to_string(out) + " is too large", n);
  return std::nullopt;
}

// Optional symlink details shared by v1 file dicts and v2 leaves.
std::optional<error> read_attrs(const node& d, const std::string& field, raw_file& f) {
  if (node a = d.find("attr"); a.is_string()) apply_attr(f, a.as_string());
  if (f.link) {
    node sp = d.find("symlink path");
    if (!sp) return bad(field + ".symlink path", "missing for a symlink", d);
    if (auto e = read_path(sp, field + ".symlink path", f.link_comps)) return std::move(*e);
  }
  return std::nullopt;
}

std::optional<error> walk_tree(const node& dir, std::vector<std::string_view>& prefix, std::vector<raw_file>& out) {
  for (node key : dir) {
    node val = key.value_of_key();
    // Names in messages are capped, so hostile long names cost no more than short ones.
    std::string field = "info.file tree/" + describe_path(prefix);
    if (!key.as_string().empty()) field.append(prefix.empty() ? "" : "/").append(cap_name(key.as_string()));
    if (!val.is_dict()) return bad(field, "expected a dictionary", val);
    // BEP 52 has no legacy to stay compatible with: '.' and '..' are refused, not renamed.
    if (key.as_string() == "." || key.as_string() == "..") {
      return bad(field, "'" + std::string(key.as_string()) + "' is not a valid name (path traversal)", key);
    }
    if (key.as_string().empty()) {
      if (prefix.empty()) return bad(field, "file with no name at the root of the tree", key);
      if (dir.size() != 1) return bad(field, "is both a file and a directory", key);
      raw_file f;
      f.comps = prefix;
      f.where = val;
      if (auto e = read_attrs(val, field, f)) return std::move(*e);
      // v2 files are piece-aligned by the format itself: a pad file in the tree would be
      // data that is not in the torrent (libtorrent refuses it too).
      if (f.pad) return bad(field + ".attr", "the pad attribute 'p' is not allowed on a v2 file", val);
      // BEP 47: a symlink's length is 0 and may be left out (libtorrent leaves it out in v2).
      node len = val.find("length");
      if (!f.link || len) {
        if (auto e = read_length(len, field + ".length", f.size)) return std::move(*e);
      }
      node root = val.find("pieces root");
      if (f.size > 0 && !f.link) {
        if (!root) return bad(field + ".pieces root", "missing for a file with data", val);
        if (!root.is_string()) return bad(field + ".pieces root", "expected a string of 32 bytes", root);
        if (root.as_string().size() != 32) {
          return bad(field + ".pieces root", "expected 32 bytes, is " + std::to_string(root.as_string().size()), root);
        }
        if (std::all_of(root.as_string().begin(), root.as_string().end(), [](char c) { return c == 0; })) {
          return bad(field + ".pieces root", "is all zeros: a file with data needs a real root hash", root);
        }
        sha256_digest d;
        std::copy(root.as_string().begin(), root.as_string().end(), reinterpret_cast<char*>(d.data()));
        f.root = d;
      }
      out.push_back(std::move(f));
      continue;
    }
    prefix.push_back(key.as_string());
    auto e = walk_tree(val, prefix, out);
    prefix.pop_back();
    if (e) return e;
  }
  return std::nullopt;
}

// Joins sanitised components; notes a warning when the shown name differs.
std::string sanitize_path(const std::vector<std::string_view>& comps, std::vector<std::string>& warnings,
                          const std::string& what) {
  std::string out;
  bool changed = false;
  for (auto c : comps) {
    auto s = sanitize_component(c);
    changed = changed || !s || *s != c;
    if (!s) continue;
    if (!out.empty()) out += '/';
    out += *s;
  }
  if (changed) warnings.push_back(what + ": name '" + describe_path(comps) + "' shown as '" + cap_name(out) + "'");
  return out;
}

// `path` + "." + k, the last component cut (at a character boundary) to leave room for the
// suffix, so that a renamed duplicate still fits in max_component_bytes.
std::string with_suffix(const std::string& path, int k) {
  const std::string suffix = "." + std::to_string(k);
  const std::size_t slash = path.rfind('/');
  const std::size_t start = slash == std::string::npos ? 0 : slash + 1;
  std::size_t keep = path.size();
  if (keep - start + suffix.size() > max_component_bytes) {
    keep = start + max_component_bytes - suffix.size();
    while (keep > start && (static_cast<unsigned char>(path[keep]) & 0xC0) == 0x80)
      --keep;
  }
  return path.substr(0, keep) + suffix;
}

}  // namespace

std::string_view version_name(torrent_version v) {
  switch (v) {
    case torrent_version::v1:
      return "v1";
    case torrent_version::v2:
      return "v2";
    case torrent_version::hybrid:
      return "hybrid";
  }
  return "?";
}

std::optional<std::string> sanitize_component(std::string_view c) {
  if (c.empty() || c == "." || c == "..") return std::nullopt;
  // Cut before repairing: the result keeps at most max_component_bytes anyway.
  std::string s = repair_utf8(c.substr(0, 4 * max_component_bytes));
  for (char& ch : s) {
    auto u = static_cast<unsigned char>(ch);
    if (ch == '/' || ch == '\\' || u < 0x20 || u == 0x7f) ch = '_';
  }
  // A drive letter ("C:") would make the path absolute on Windows.
  if (s.size() >= 2 && s[1] == ':' && ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) {
    s[1] = '_';
  }
  if (s.size() > max_component_bytes) {
    // Cut at a character boundary, keeping a short extension if there is one.
    std::string ext;
    if (auto dot = s.rfind('.'); dot != std::string::npos && s.size() - dot <= 16) ext = s.substr(dot);
    std::size_t keep = max_component_bytes - ext.size();
    while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80)
      --keep;
    s = s.substr(0, keep) + ext;
  }
  return s;
}

bool is_clean_relative_path(std::string_view p) {
  if (p.empty() || p.size() > 4096) return false;
  std::size_t pos = 0;
  while (true) {
    const auto end = p.find('/', pos);
    const auto c = p.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    const auto clean = sanitize_component(c);
    if (!clean || *clean != c) return false;
    if (end == std::string_view::npos) return true;
    pos = end + 1;
  }
}

result<metainfo> parse_metainfo(std::string_view torrent) {
  if (torrent.size() > max_torrent_size) {
    return error{errc::limit_exceeded,
                 "torrent is " + std::to_string(torrent.size()) + " bytes, over the limit of " +
                     std::to_string(max_torrent_size),
                 no_offset};
  }
  auto doc = bencode::decode(torrent);
  if (!doc) return doc.err();
  metainfo m;
  node root = doc->root();
  if (!root.is_dict()) return bad("top level", "expected a dictionary", root);
  node info = root.find("info");
  if (!info) return bad("info", "missing", root);
  if (!info.is_dict()) return bad("info", "expected a dictionary", info);
  m.info_bytes = std::string(info.raw());

  bool v2 = false;
  if (node mv = info.find("meta version")) {
    if (!mv.is_int()) return bad("info.meta version", "expected an integer", mv);
    if (mv.as_int() == 2)
      v2 = true;
    else if (mv.as_int() != 1)
      return bad("info.meta version", "unsupported version " + std::to_string(mv.as_int()), mv);
  }
  node pieces = info.find("pieces");
  const bool v1 = static_cast<bool>(pieces);
  if (!v1 && !v2) return bad("info", "has neither 'pieces' (v1) nor 'meta version' 2 (v2)", info);
  m.version = v1 && v2 ? torrent_version::hybrid : v2 ? torrent_version::v2 : torrent_version::v1;
  if (v2) {
    // BEP 52 hashes the info dictionary with SHA-256 and has no legacy encoders to excuse:
    // it must be canonical bencoding (sorted keys, no leading zeros, no -0), as libtorrent
    // requires, or two clients could disagree on what the torrent is.
    auto canon = bencode::decode(info.raw(), bencode::mode::strict);
    if (!canon) {
      const auto at = canon.err().offset;
      return error{errc::bad_metainfo,
                   "info: a v2 info dictionary must be canonical bencoding (" + canon.err().detail + ")",
                   at == no_offset ? info.offset() : info.offset() + at};
    }
  }
  if (v1) m.info_hash_v1 = sha1(info.raw());
  if (v2) m.info_hash_v2 = sha256(info.raw());

  node pl = info.find("piece length");
  if (!pl) return bad("info.piece length", "missing", info);
  if (!pl.is_int()) return bad("info.piece length", "expected an integer", pl);
  if (pl.as_int() <= 0) return bad("info.piece length", "must be positive, is " + std::to_string(pl.as_int()), pl);
  m.piece_length = static_cast<std::uint64_t>(pl.as_int());
  if (m.piece_length > max_piece_length) {
    return bad("info.piece length", std::to_string(m.piece_length) + " is over the limit of 1 GiB", pl);
  }
  if (v2 && (m.piece_length < min_v2_piece_length || (m.piece_length & (m.piece_length - 1)) != 0)) {
    return bad("info.piece length",
               "must be a power of two of at least 16 KiB in a v2 torrent, is " + std::to_string(m.piece_length), pl);
  }

  node name = info.find("name.utf-8");
  if (!name.is_string()) name = info.find("name");
  if (!name) return bad("info.name", "missing", info);
  if (!name.is_string()) return bad("info.name", "expected a string", name);
  {
    auto s = sanitize_component(name.as_string());
    std::string shown = s ? *s : to_hex(as_view(m.info_hash_v1 ? *m.info_hash_v1 : sha1(info.raw())));
    if (shown != name.as_string()) {
      m.warnings.push_back("torrent name '" + repair_utf8(name.as_string()) + "' shown as '" + shown + "'");
    }
    m.name = shown;
  }

  // v1 file list.
  std::vector<raw_file> v1_files;
  bool v1_multi = false;
  if (v1) {
    node files = info.find("files");
    node length = info.find("length");
    if (files && length) return bad("info", "has both 'length' and 'files'", info);
    if (files) {
      if (!files.is_list()) return bad("info.files", "expected a list", files);
      if (files.size() == 0) return bad("info.files", "empty list", files);
      v1_multi = true;
      std::size_t i = 0;
      for (node f : files) {
        std::string field = "info.files[" + std::to_string(i++) + "]";
        if (!f.is_dict()) return bad(field, "expected a dictionary", f);
        raw_file rf;
        rf.where = f;
        if (auto e = read_attrs(f, field, rf)) return std::move(*e);
        node len = f.find("length");
        if (!rf.link || len) {
          if (auto e = read_length(len, field + ".length", rf.size)) return std::move(*e);
        }
        node p = f.find("path.utf-8");
        if (!p.is_list()) p = f.find("path");
        if (!p) return bad(field + ".path", "missing", f);
        if (auto e = read_path(p, field + ".path", rf.comps)) return std::move(*e);
        if (rf.comps.empty()) return bad(field + ".path", "empty list: a file needs a name", p);
        v1_files.push_back(std::move(rf));
      }
    } else {
      if (!length) return bad("info", "has neither 'length' nor 'files'", info);
      raw_file rf;
      rf.where = info;
      if (auto e = read_length(length, "info.length", rf.size)) return std::move(*e);
      rf.comps.push_back(name.as_string());
      if (auto e = read_attrs(info, "info", rf)) return std::move(*e);
      v1_files.push_back(std::move(rf));
    }
    if (!pieces.is_string()) return bad("info.pieces", "expected a string", pieces);
    if (pieces.as_string().size() % 20 != 0) {
      return bad("info.pieces", "length " + std::to_string(pieces.as_string().size()) + " is not a multiple of 20",
                 pieces);
    }
  }

  // v2 file tree.
  std::vector<raw_file> v2_files;
  bool v2_multi = false;
  if (v2) {
    node tree = info.find("file tree");
    if (!tree) return bad("info.file tree", "missing in a v2 torrent", info);
    if (!tree.is_dict()) return bad("info.file tree", "expected a dictionary", tree);
    std::vector<std::string_view> prefix;
    if (auto e = walk_tree(tree, prefix, v2_files)) return std::move(*e);
    if (v2_files.empty()) return bad("info.file tree", "has no files", tree);
    v2_multi = v2_files.size() > 1 || v2_files[0].comps.size() > 1;
  }

  // Hybrid: both lists must describe the same files in the same order.
  if (v1 && v2) {
    std::size_t j = 0;
    for (std::size_t i = 0; i < v1_files.size(); ++i) {
      const raw_file& a = v1_files[i];
      if (a.pad) continue;
      const std::string field = "info.files[" + std::to_string(i) + "]";
      if (j >= v2_files.size()) return bad(field, "not in the v2 file tree (inconsistent hybrid torrent)", a.where);
      const raw_file& b = v2_files[j++];
      std::vector<std::string_view> ac = a.comps;
      if (ac != b.comps || a.size != b.size) {
        return bad(field,
                   "'" + repair_utf8(describe_path(ac)) + "' (" + std::to_string(a.size) +
                       " bytes) does not match the v2 file tree's '" + repair_utf8(describe_path(b.comps)) + "' (" +
                       std::to_string(b.size) + " bytes) (inconsistent hybrid torrent)",
                   a.where);
      }
    }
    if (j != v2_files.size())
      return bad("info.file tree", "has files missing from the v1 list (inconsistent hybrid torrent)", info);
    if (v1_multi != v2_multi && v2_multi) {
      return bad("info", "single-file v1 part but multi-file v2 part (inconsistent hybrid torrent)", info);
    }
  }

  // Lay the files out in piece space and sanitise their names.
  const std::vector<raw_file>& src = v1 ? v1_files : v2_files;
  m.multi_file = v1 ? v1_multi : v2_multi;
  std::uint64_t pos = 0;
  // Paths in use, with the next suffix to try: renaming stays linear in hostile input.
  std::unordered_map<std::string, int> seen;
  std::size_t v2_index = 0;  // hybrid: the v2 entry matching the next non-pad v1 file
  std::uint64_t v2_pos = 0;  // hybrid: where the v2 layout puts the next file
  for (std::size_t i = 0; i < src.size(); ++i) {
    const raw_file& rf = src[i];
    file_entry fe;
    fe.size = rf.size;
    fe.pad = rf.pad;
    fe.executable = rf.exec;
    fe.hidden = rf.hidden;
    fe.symlink = rf.link;
    // v2: every file starts on a piece boundary; the gap after a file with data is its
    // padding, so an empty file that follows sits at the boundary too (as in libtorrent).
    if (!v1 && pos % m.piece_length != 0) pos += m.piece_length - pos % m.piece_length;
    if (v1 && v2 && !rf.pad && fe.size > 0) {
      // Each v2 file with data starts on a piece boundary; the v1 list must put it there
      // too, or the two halves of the torrent would hash different pieces.
      if (v2_pos % m.piece_length != 0) v2_pos += m.piece_length - v2_pos % m.piece_length;
      if (pos != v2_pos) {
        return bad("info.files[" + std::to_string(i) + "]",
                   "'" + describe_path(rf.comps) + "' starts at byte " + std::to_string(pos) +
                       " in the v1 file list but at " + std::to_string(v2_pos) +
                       " in the v2 file tree (inconsistent hybrid torrent: a pad file is missing or has the wrong "
                       "length)",
                   rf.where);
      }
      v2_pos += fe.size;
    }
    fe.offset = pos;
    if (pos > max_total_size - fe.size) return bad("info", "total size overflows", info);
    pos += fe.size;
    if (!rf.pad) m.total_size += fe.size;
    const std::string what = "file " + std::to_string(i);
    if (m.multi_file) {
      std::string rel = sanitize_path(rf.comps, m.warnings, what);
      if (rel.empty()) rel = "_" + std::to_string(i);
      fe.path = m.name + "/" + rel;
    } else {
      fe.path = m.name;
    }
    if (!fe.pad) {
      const std::string base = fe.path;
      auto [it, fresh] = seen.try_emplace(base, 1);
      if (!fresh) {
        do {
          fe.path = with_suffix(base, it->second++);
        } while (seen.count(fe.path) != 0);
        seen.emplace(fe.path, 1);
        m.warnings.push_back(what + ": duplicate path '" + base + "' renamed to '" + fe.path + "'");
      }
    }
    if (rf.link) fe.symlink_target = sanitize_path(rf.link_comps, m.warnings, what + " symlink target");
    if (v2 && !rf.pad) fe.pieces_root = v1 ? v2_files[v2_index++].root : rf.root;
    m.files.push_back(std::move(fe));
  }

  if (m.total_size == 0) {
    return bad("info", "total length is 0: a torrent must hold at least one byte of data", info);
  }

  // Piece count.
  if (v1) {
    const std::uint64_t have = pieces.as_string().size() / 20;
    const std::uint64_t want = (pos + m.piece_length - 1) / m.piece_length;
    if (have != want) {
      return bad("info.pieces",
                 std::to_string(have) + " piece hashes for " + std::to_string(pos) + " bytes in pieces of " +
                     std::to_string(m.piece_length) + " (expected " + std::to_string(want) + ")",
                 pieces);
    }
    if (v2) {
      const std::uint64_t v2_want = (v2_pos + m.piece_length - 1) / m.piece_length;
      if (want != v2_want) {
        return bad("info.files",
                   "the v1 file list spans " + std::to_string(want) + " pieces but the v2 file tree " +
                       std::to_string(v2_want) + " (inconsistent hybrid torrent: a pad file at the end is too long)",
                   info);
      }
    }
    m.num_pieces = have;
    m.v1_piece_hashes = std::string(pieces.as_string());
  } else {
    m.num_pieces = (pos + m.piece_length - 1) / m.piece_length;
  }
  if (m.num_pieces > max_pieces) {
    return error{errc::limit_exceeded,
                 "info: " + std::to_string(m.num_pieces) + " pieces, over the limit of " + std::to_string(max_pieces),
                 info.offset()};
  }

  // v2 piece layers: each must be a string as long as its file needs, or the .torrent is
  // corrupt. A layer that does not hash up to the file's root, or a missing one, is only
  // noted and left out (peers can send it).
  if (v2) {
    node layers = root.find("piece layers");
    if (layers && !layers.is_dict()) {
      m.warnings.push_back("piece layers: not a dictionary, ignored (peers can send them again)");
      layers = {};
    }
    // Index the layers once: a lookup per file would be quadratic in hostile input.
    std::unordered_map<std::string_view, node> by_root;
    for (node k : layers)
      by_root.emplace(k.as_string(), k.value_of_key());
    const unsigned levels = merkle::log2_exact(m.piece_length / merkle::block_size);
    const sha256_digest pad = merkle::pad_hash(levels);
    for (const file_entry& fe : m.files) {
      if (!fe.pieces_root || fe.size <= m.piece_length) continue;
      auto found = by_root.find(as_view(*fe.pieces_root));
      if (found == by_root.end()) {
        m.warnings.push_back("piece layer for '" + fe.path + "' missing (peers can send it)");
        continue;
      }
      const node layer = found->second;
      const std::uint64_t n = (fe.size + m.piece_length - 1) / m.piece_length;
      if (!layer.is_string())
        return bad("piece layers", "the layer for '" + cap_name(fe.path) + "' is not a string", layer);
      if (layer.as_string().size() != n * 32) {
        return bad("piece layers",
                   "the layer for '" + cap_name(fe.path) + "' is " + std::to_string(layer.as_string().size()) +
                       " bytes, expected " + std::to_string(n * 32) + " (32 for each of its " + std::to_string(n) +
                       " pieces)",
                   layer);
      }
      std::vector<sha256_digest> hashes(n);
      std::string_view s = layer.as_string();
      for (std::uint64_t k = 0; k < n; ++k)
        std::copy_n(s.data() + k * 32, 32, reinterpret_cast<char*>(hashes[k].data()));
      if (merkle::root(hashes, pad) != *fe.pieces_root) {
        // Layers sit outside the info dictionary, so a bad one does not make the torrent
        // another torrent: drop it, and the layer is fetched from peers and checked
        // against the root like any missing one (libtorrent accepts such a file too).
        m.warnings.push_back("piece layer for '" + cap_name(fe.path) +
                             "' does not hash to the file's pieces root: dropped (peers can send it)");
        continue;
      }
      m.piece_layers.emplace(*fe.pieces_root, std::string(s));
    }
  }

  // Trackers (BEP 12 tiers, or the single announce URL).
  std::set<std::string> seen_trackers;
  if (node al = root.find("announce-list"); al.is_list()) {
    for (node tier : al) {
      if (!tier.is_list()) continue;
      std::vector<std::string> t;
      for (node u : tier) {
        if (u.is_string() && !u.as_string().empty() && seen_trackers.insert(std::string(u.as_string())).second) {
          t.emplace_back(repair_utf8(u.as_string()));
        }
      }
      if (!t.empty()) m.tracker_tiers.push_back(std::move(t));
    }
  }
  if (m.tracker_tiers.empty()) {
    if (node a = root.find("announce"); a.is_string() && !a.as_string().empty()) {
      m.tracker_tiers.push_back({repair_utf8(a.as_string())});
    }
  }
  // Web seeds (BEP 19): a string or a list of strings.
  if (node ul = root.find("url-list")) {
    auto add = [&](node u) {
      if (u.is_string() && !u.as_string().empty()) m.web_seeds.emplace_back(repair_utf8(u.as_string()));
    };
    if (ul.is_list()) {
      for (node u : ul)
        add(u);
    } else {
      add(ul);
    }
  }
  if (node c = root.find("comment.utf-8"); c.is_string())
    m.comment = repair_utf8(c.as_string());
  else if (node c2 = root.find("comment"); c2.is_string())
    m.comment = repair_utf8(c2.as_string());
  if (node c = root.find("created by"); c.is_string()) m.created_by = repair_utf8(c.as_string());
  if (node d = root.find("creation date"); d.is_int()) m.creation_date = d.as_int();
  if (node s = info.find("source"); s.is_string()) m.source = repair_utf8(s.as_string());
  if (node p = info.find("private"); p.is_int() && p.as_int() == 1) m.is_private = true;
  return m;
}

result<metainfo> load_metainfo(const std::filesystem::path& file) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) return error{errc::io, ec.message(), no_offset};
  if (size > max_torrent_size) {
    return error{errc::limit_exceeded,
                 std::to_string(size) + " bytes, over the .torrent limit of " + std::to_string(max_torrent_size),
                 no_offset};
  }
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  // ifstream keeps open(2)'s errno: "Permission denied" says more than "cannot open".
  if (!in)
    return error{errc::io, std::string("cannot open for reading: ") + std::strerror(errno ? errno : EIO), no_offset};
  std::string data(size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size) {
    return error{errc::io, std::string("short read") + (errno ? std::string(": ") + std::strerror(errno) : ""),
                 no_offset};
  }
  return parse_metainfo(data);
}

}  // namespace shoal
