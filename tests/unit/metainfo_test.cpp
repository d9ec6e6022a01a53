#include "core/metainfo.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/bencode.hpp"
#include "core/merkle.hpp"
#include "core/text.hpp"

using namespace shoal;
using bencode::dict;
using bencode::list;
using bencode::value;

namespace {

std::string hashes(std::uint64_t n) {
  return std::string(n * 20, 'h');
}

dict single_info(std::int64_t length = 100000, std::int64_t plen = 16384) {
  const std::uint64_t n = (static_cast<std::uint64_t>(length) + plen - 1) / plen;
  return dict{{"name", "file.bin"}, {"piece length", plen}, {"length", length}, {"pieces", hashes(n)}};
}

dict file_dict(list path, std::int64_t length, std::string attr = "") {
  dict d{{"length", length}, {"path", std::move(path)}};
  if (!attr.empty()) d["attr"] = attr;
  return d;
}

dict multi_info(list files, std::int64_t total, std::int64_t plen = 16384) {
  const std::uint64_t n = (static_cast<std::uint64_t>(total) + plen - 1) / plen;
  return dict{{"name", "folder"}, {"piece length", plen}, {"files", std::move(files)}, {"pieces", hashes(n)}};
}

std::string torrent(dict info, dict top = {}) {
  top["info"] = std::move(info);
  return bencode::encode(top);
}

metainfo parse_ok(const std::string& t) {
  auto r = parse_metainfo(t);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message());
  return r.ok() ? std::move(r).value() : metainfo{};
}

error parse_bad(const std::string& t) {
  auto r = parse_metainfo(t);
  EXPECT_FALSE(r.ok());
  return r.ok() ? error{} : r.err();
}

std::string digest_str(const sha256_digest& d) {
  return std::string(as_view(d));
}

// A v2 leaf for a file of `length` bytes with the given root.
dict v2_leaf(std::int64_t length, const sha256_digest& root) {
  dict props{{"length", length}};
  if (length > 0) props["pieces root"] = digest_str(root);
  return dict{{"", props}};
}

}  // namespace

TEST(Metainfo, V1SingleFile) {
  const std::string t = torrent(single_info(), dict{{"announce", "http://tracker/announce"},
                                                    {"comment", "hello"},
                                                    {"created by", "test"},
                                                    {"creation date", 1700000000}});
  auto m = parse_ok(t);
  EXPECT_EQ(m.version, torrent_version::v1);
  EXPECT_EQ(m.name, "file.bin");
  EXPECT_FALSE(m.multi_file);
  EXPECT_EQ(m.total_size, 100000u);
  EXPECT_EQ(m.piece_length, 16384u);
  EXPECT_EQ(m.num_pieces, 7u);
  ASSERT_EQ(m.files.size(), 1u);
  EXPECT_EQ(m.files[0].path, "file.bin");
  ASSERT_EQ(m.tracker_tiers.size(), 1u);
  EXPECT_EQ(m.tracker_tiers[0][0], "http://tracker/announce");
  EXPECT_EQ(m.comment, "hello");
  EXPECT_EQ(m.created_by, "test");
  EXPECT_EQ(m.creation_date, 1700000000);
  EXPECT_FALSE(m.is_private);
  EXPECT_FALSE(m.has_v2());
  EXPECT_TRUE(m.warnings.empty());
}

TEST(Metainfo, InfoHashIsOverTheBytesAsWritten) {
  // Unsorted keys: re-encoding would change the hash, so it must be taken from the input.
  const std::string info = "d6:lengthi5e4:name1:x6:pieces20:aaaaaaaaaaaaaaaaaaaa12:piece lengthi16384e1:ai1ee";
  const std::string t = "d4:info" + info + "e";
  auto m = parse_ok(t);
  EXPECT_EQ(*m.info_hash_v1, sha1(info));
  EXPECT_EQ(m.info_bytes, info);
}

TEST(Metainfo, V1MultiFileAndTrackers) {
  list files{file_dict(list{"a", "b.txt"}, 20000), file_dict(list{"empty"}, 0), file_dict(list{"c"}, 1)};
  dict top{{"announce", "http://ignored/"},
           {"announce-list", list{list{"http://t1/", "http://t1b/"}, list{}, list{"udp://t2:80", "http://t1/"}}},
           {"url-list", list{"http://ws1/", "http://ws2/"}}};
  auto m = parse_ok(torrent(multi_info(files, 20001), top));
  EXPECT_TRUE(m.multi_file);
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_EQ(m.files[0].path, "folder/a/b.txt");
  EXPECT_EQ(m.files[1].path, "folder/empty");
  EXPECT_EQ(m.files[2].offset, 20000u);
  EXPECT_EQ(m.num_pieces, 2u);
  // Empty tiers and repeated URLs are dropped; announce is ignored when the list exists.
  ASSERT_EQ(m.tracker_tiers.size(), 2u);
  EXPECT_EQ(m.tracker_tiers[0], (std::vector<std::string>{"http://t1/", "http://t1b/"}));
  EXPECT_EQ(m.tracker_tiers[1], (std::vector<std::string>{"udp://t2:80"}));
  EXPECT_EQ(m.web_seeds, (std::vector<std::string>{"http://ws1/", "http://ws2/"}));
  // url-list may also be a single string.
  auto m2 = parse_ok(torrent(single_info(), dict{{"url-list", "http://one/"}}));
  EXPECT_EQ(m2.web_seeds, std::vector<std::string>{"http://one/"});
}

TEST(Metainfo, PrivateSourceAndUtf8Fields) {
  dict info = single_info();
  info["private"] = 1;
  info["source"] = "SRC";
  info["name.utf-8"] = "utf8name";
  auto m = parse_ok(torrent(info, dict{{"comment", "c"}, {"comment.utf-8", "c8"}}));
  EXPECT_TRUE(m.is_private);
  EXPECT_EQ(m.source, "SRC");
  EXPECT_EQ(m.name, "utf8name");
  EXPECT_EQ(m.comment, "c8");
}

TEST(Metainfo, HostileNamesAreSanitised) {
  list files{
      file_dict(list{"..", "..", "etc", "passwd"}, 1),
      file_dict(list{"/abs", "x"}, 1),
      file_dict(list{"a\\b", "c/d"}, 1),
      file_dict(list{"bad\xff", "n\x01ul"}, 1),
      file_dict(list{"C:", "win"}, 1),
      file_dict(list{".", ""}, 1),
      file_dict(list{std::string(300, 'x') + ".txt"}, 1),
  };
  auto m = parse_ok(torrent(multi_info(files, 7)));
  ASSERT_EQ(m.files.size(), 7u);
  EXPECT_EQ(m.files[0].path, "folder/etc/passwd");
  EXPECT_EQ(m.files[1].path, "folder/_abs/x");
  EXPECT_EQ(m.files[2].path, "folder/a_b/c_d");
  EXPECT_EQ(m.files[3].path, "folder/bad\xef\xbf\xbd/n_ul");
  EXPECT_EQ(m.files[4].path, "folder/C_/win");
  EXPECT_EQ(m.files[5].path, "folder/_5");
  const std::string& longname = m.files[6].path;
  EXPECT_EQ(longname.size(), std::string("folder/").size() + max_component_bytes);
  EXPECT_EQ(longname.substr(longname.size() - 4), ".txt");
  for (const auto& f : m.files) {
    EXPECT_TRUE(is_valid_utf8(f.path));
    EXPECT_EQ(f.path.find(".."), std::string::npos);
    EXPECT_NE(f.path.front(), '/');
  }
  EXPECT_GE(m.warnings.size(), 7u);
}

TEST(Metainfo, BadTorrentNameFallsBackToHash) {
  dict info = single_info();
  info["name"] = "..";
  auto m = parse_ok(torrent(info));
  EXPECT_EQ(m.name, to_hex(as_view(*m.info_hash_v1)));
  EXPECT_EQ(m.files[0].path, m.name);
  EXPECT_FALSE(m.warnings.empty());
  info["name"] = "../../x";
  EXPECT_EQ(parse_ok(torrent(info)).name, ".._.._x");
}

TEST(Metainfo, DuplicatePathsAreRenamed) {
  list files{file_dict(list{"a"}, 1), file_dict(list{"..", "a"}, 1), file_dict(list{"a"}, 1)};
  auto m = parse_ok(torrent(multi_info(files, 3)));
  EXPECT_EQ(m.files[0].path, "folder/a");
  EXPECT_EQ(m.files[1].path, "folder/a.1");
  EXPECT_EQ(m.files[2].path, "folder/a.2");
}

TEST(Metainfo, Bep47AttributesAndSymlinks) {
  dict link = file_dict(list{"link"}, 0, "l");
  link["symlink path"] = list{"..", "..", "target"};
  list files{file_dict(list{"run.sh"}, 10, "xh"), file_dict(list{".pad", "16374"}, 16374, "p"), link,
             file_dict(list{"target"}, 5)};
  auto m = parse_ok(torrent(multi_info(files, 16389)));
  ASSERT_EQ(m.files.size(), 4u);
  EXPECT_TRUE(m.files[0].executable);
  EXPECT_TRUE(m.files[0].hidden);
  EXPECT_TRUE(m.files[1].pad);
  EXPECT_TRUE(m.files[2].symlink);
  EXPECT_EQ(m.files[2].symlink_target, "target");  // kept inside the torrent
  EXPECT_EQ(m.files[3].offset, 16384u);
  EXPECT_EQ(m.total_size, 15u);  // pad files are not counted

  dict nolink = file_dict(list{"link"}, 0, "l");
  EXPECT_NE(parse_bad(torrent(multi_info(list{nolink}, 0))).detail.find("symlink path"), std::string::npos);
}

TEST(Metainfo, StructureErrorsNameTheField) {
  struct bad_case {
    std::string torrent;
    std::string expect;
  };
  dict neg = single_info();
  neg["length"] = -1;
  dict zero_pl = single_info();
  zero_pl["piece length"] = 0;
  dict str_pl = single_info();
  str_pl["piece length"] = "16384";
  dict short_pieces = single_info();
  short_pieces["pieces"] = hashes(6);
  dict odd_pieces = single_info();
  odd_pieces["pieces"] = std::string(141, 'x');
  dict both = single_info();
  both["files"] = list{file_dict(list{"a"}, 1)};
  dict neither = single_info();
  neither.erase("length");
  dict noname = single_info();
  noname.erase("name");
  dict badpath = multi_info(list{dict{{"length", 1}, {"path", list{1}}}}, 1);
  dict badver = single_info();
  badver["meta version"] = 3;
  dict nofiles = multi_info(list{}, 0);
  std::vector<bad_case> cases{
      {"i1e", "top level: expected a dictionary"},
      {bencode::encode(dict{{"x", 1}}), "info: missing"},
      {bencode::encode(dict{{"info", 1}}), "info: expected a dictionary"},
      {torrent(neg), "info.length: negative length -1"},
      {torrent(zero_pl), "info.piece length: must be positive"},
      {torrent(str_pl), "info.piece length: expected an integer"},
      {torrent(short_pieces), "info.pieces: 6 piece hashes for 100000 bytes"},
      {torrent(odd_pieces), "info.pieces: length 141 is not a multiple of 20"},
      {torrent(both), "info: has both 'length' and 'files'"},
      {torrent(neither), "info: has neither 'length' nor 'files'"},
      {torrent(noname), "info.name: missing"},
      {torrent(badpath), "info.files[0].path: expected a list of strings"},
      {torrent(badver), "info.meta version: unsupported version 3"},
      {torrent(nofiles), "info.files: empty list"},
      {"d4:infod", "bencode: unexpected end of input"},
  };
  for (const auto& c : cases) {
    auto e = parse_bad(c.torrent);
    EXPECT_NE(e.detail.find(c.expect), std::string::npos) << "got: " << e.detail << "\nwant: " << c.expect;
    EXPECT_NE(e.code, errc::ok);
  }
  // The error points into the file.
  auto e = parse_bad(torrent(str_pl));
  EXPECT_NE(e.offset, no_offset);
  EXPECT_EQ(torrent(str_pl).substr(e.offset, 7), "5:16384");
}

TEST(Metainfo, PieceCountLimitAtBoundAndOnePast) {
  // 2^21 pieces of 16 KiB: accepted; one more piece: rejected.
  const std::int64_t plen = 16384;
  dict at{{"name", "big"},
          {"piece length", plen},
          {"length", static_cast<std::int64_t>(max_pieces) * plen},
          {"pieces", hashes(max_pieces)}};
  auto m = parse_ok(torrent(at));
  EXPECT_EQ(m.num_pieces, max_pieces);
  dict past = at;
  past["length"] = static_cast<std::int64_t>(max_pieces + 1) * plen;
  past["pieces"] = hashes(max_pieces + 1);
  EXPECT_EQ(parse_bad(torrent(past)).code, errc::limit_exceeded);
}

TEST(Metainfo, TorrentSizeLimitAtBoundAndOnePast) {
  std::string base = torrent(single_info(), dict{{"comment", ""}});
  // Grow the comment until the file is exactly max_torrent_size bytes.
  std::size_t pad = max_torrent_size - base.size();
  std::string t;
  for (int guard = 0; guard < 4; ++guard) {
    t = torrent(single_info(), dict{{"comment", std::string(pad, 'c')}});
    if (t.size() == max_torrent_size) break;
    pad -= t.size() - max_torrent_size;
  }
  ASSERT_EQ(t.size(), max_torrent_size);
  parse_ok(t);
  t = torrent(single_info(), dict{{"comment", std::string(pad + 1, 'c')}});
  EXPECT_EQ(parse_bad(t).code, errc::limit_exceeded);
}

TEST(Metainfo, V2SingleFileWithPieceLayers) {
  const std::int64_t plen = 16384;
  const std::int64_t length = 3 * plen + 100;  // 4 pieces
  std::vector<sha256_digest> layer(4);
  for (int i = 0; i < 4; ++i)
    layer[i] = sha256(std::string(1, static_cast<char>('a' + i)));
  const sha256_digest root = merkle::root(layer, merkle::pad_hash(0));
  std::string layer_bytes;
  for (auto& h : layer)
    layer_bytes.append(as_view(h));
  dict info{{"name", "movie.mkv"},
            {"piece length", plen},
            {"meta version", 2},
            {"file tree", dict{{"movie.mkv", v2_leaf(length, root)}}}};
  auto m = parse_ok(torrent(info, dict{{"piece layers", dict{{digest_str(root), layer_bytes}}}}));
  EXPECT_EQ(m.version, torrent_version::v2);
  EXPECT_TRUE(m.has_v2());
  EXPECT_FALSE(m.has_v1());
  EXPECT_FALSE(m.multi_file);
  EXPECT_EQ(m.num_pieces, 4u);
  EXPECT_EQ(m.files[0].path, "movie.mkv");
  EXPECT_EQ(m.files[0].pieces_root, root);
  EXPECT_EQ(m.piece_layers.count(root), 1u);
  EXPECT_TRUE(m.warnings.empty());

  // A layer of the wrong length makes the torrent invalid. One that does not hash to the
  // root is dropped with a warning, like a missing one: layers are outside the info
  // dictionary, and peers can send a good one (libtorrent accepts such a file too).
  std::string wrong = layer_bytes;
  wrong[0] ^= 1;
  auto dropped = parse_ok(torrent(info, dict{{"piece layers", dict{{digest_str(root), wrong}}}}));
  EXPECT_EQ(dropped.piece_layers.count(root), 0u);
  EXPECT_EQ(dropped.num_pieces, 4u);
  ASSERT_EQ(dropped.warnings.size(), 1u);
  EXPECT_NE(dropped.warnings[0].find("piece layer for 'movie.mkv' does not hash to the file's pieces root: dropped"),
            std::string::npos)
      << dropped.warnings[0];
  EXPECT_NE(parse_bad(torrent(info, dict{{"piece layers", dict{{digest_str(root), layer_bytes.substr(32)}}}}))
                .detail.find("piece layers: the layer for 'movie.mkv' is 96 bytes, expected 128"),
            std::string::npos);
  EXPECT_NE(parse_bad(torrent(info, dict{{"piece layers", dict{{digest_str(root), 5}}}})).detail.find("not a string"),
            std::string::npos);
  auto m4 = parse_ok(torrent(info));
  EXPECT_NE(m4.warnings.at(0).find("missing"), std::string::npos);
}

TEST(Metainfo, V2MultiFileLayoutIsPieceAligned) {
  const std::int64_t plen = 32768;
  sha256_digest r1 = sha256("1"), r2 = sha256("2");
  dict tree{{"dir", dict{{"a", v2_leaf(100, r1)}, {"empty", v2_leaf(0, {})}}}, {"z", v2_leaf(plen, r2)}};
  dict info{{"name", "pack"}, {"piece length", plen}, {"meta version", 2}, {"file tree", tree}};
  auto m = parse_ok(torrent(info));
  EXPECT_TRUE(m.multi_file);
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_EQ(m.files[0].path, "pack/dir/a");
  EXPECT_EQ(m.files[1].path, "pack/dir/empty");
  EXPECT_FALSE(m.files[1].pieces_root);
  EXPECT_EQ(m.files[2].path, "pack/z");
  EXPECT_EQ(m.files[2].offset, static_cast<std::uint64_t>(plen));
  EXPECT_EQ(m.num_pieces, 2u);
  EXPECT_EQ(m.total_size, 100u + plen);
}

TEST(Metainfo, V2EmptyFilesAndSymlinksWithoutLength) {
  // As libtorrent writes them: a symlink leaf has no length (BEP 47 allows leaving it
  // out), and an empty file after a file with data starts at the next piece boundary.
  const sha256_digest r = sha256("a");
  dict link{{"attr", "l"}, {"symlink path", list{"a"}}};
  dict tree{{"a", v2_leaf(100, r)}, {"e", v2_leaf(0, {})}, {"l", dict{{"", link}}}};
  auto m = parse_ok(torrent(dict{{"name", "d"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", tree}}));
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_EQ(m.files[1].offset, 16384u);
  EXPECT_EQ(m.files[2].offset, 16384u);
  EXPECT_TRUE(m.files[2].symlink);
  EXPECT_EQ(m.files[2].symlink_target, "a");
  EXPECT_EQ(m.num_pieces, 1u);
  // A v1 symlink without a length is accepted too; a plain file still needs one.
  dict v1link{{"attr", "l"}, {"path", list{"l"}}, {"symlink path", list{"a"}}};
  EXPECT_TRUE(parse_metainfo(torrent(multi_info(list{file_dict(list{"a"}, 100), v1link}, 100))).ok());
  dict nolen{{"path", list{"b"}}};
  EXPECT_NE(parse_bad(torrent(multi_info(list{file_dict(list{"a"}, 100), nolen}, 100))).detail.find("length: missing"),
            std::string::npos);
}

TEST(Metainfo, V2StructureErrors) {
  sha256_digest r = sha256("r");
  auto info_with = [&](dict tree, std::int64_t plen = 16384) {
    return dict{{"name", "n"}, {"piece length", plen}, {"meta version", 2}, {"file tree", std::move(tree)}};
  };
  EXPECT_NE(parse_bad(torrent(info_with(dict{{"f", v2_leaf(10, r)}}, 16385))).detail.find("power of two"),
            std::string::npos);
  EXPECT_NE(parse_bad(torrent(info_with(dict{{"f", v2_leaf(10, r)}}, 8192))).detail.find("at least 16 KiB"),
            std::string::npos);
  dict noroot{{"f", dict{{"", dict{{"length", 10}}}}}};
  EXPECT_NE(parse_bad(torrent(info_with(noroot))).detail.find("info.file tree/f.pieces root: missing"),
            std::string::npos);
  dict shortroot{{"f", dict{{"", dict{{"length", 10}, {"pieces root", std::string(31, 'r')}}}}}};
  EXPECT_NE(parse_bad(torrent(info_with(shortroot))).detail.find("expected 32 bytes, is 31"), std::string::npos);
  // '.' and '..' in a v2 file tree are refused (v1 names are sanitised instead).
  EXPECT_NE(parse_bad(torrent(info_with(dict{{"..", dict{{"x", v2_leaf(10, r)}}}})))
                .detail.find("info.file tree/..: '..' is not a valid name"),
            std::string::npos);
  EXPECT_NE(parse_bad(torrent(info_with(dict{{"d", dict{{".", v2_leaf(10, r)}}}})))
                .detail.find("info.file tree/d/.: '.' is not a valid name"),
            std::string::npos);
  dict both{{"f", dict{{"", dict{{"length", 10}, {"pieces root", digest_str(r)}}}, {"g", v2_leaf(1, r)}}}};
  EXPECT_NE(parse_bad(torrent(info_with(both))).detail.find("both a file and a directory"), std::string::npos);
  EXPECT_NE(parse_bad(torrent(info_with(dict{}))).detail.find("has no files"), std::string::npos);
  dict notree{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}};
  EXPECT_NE(parse_bad(torrent(notree)).detail.find("info.file tree: missing"), std::string::npos);
}

TEST(Metainfo, HybridConsistency) {
  const std::int64_t plen = 16384;
  sha256_digest r1 = sha256("1"), r2 = sha256("2");
  dict tree{{"a", v2_leaf(100, r1)}, {"b", v2_leaf(200, r2)}};
  list v1files{file_dict(list{"a"}, 100), file_dict(list{".pad", "16284"}, plen - 100, "p"), file_dict(list{"b"}, 200)};
  dict info = multi_info(v1files, plen + 200, plen);
  info["meta version"] = 2;
  info["file tree"] = tree;
  auto m = parse_ok(torrent(info));
  EXPECT_EQ(m.version, torrent_version::hybrid);
  EXPECT_TRUE(m.has_v1());
  EXPECT_TRUE(m.has_v2());
  EXPECT_EQ(m.files[2].offset, static_cast<std::uint64_t>(plen));
  EXPECT_EQ(m.files[2].pieces_root, r2);
  EXPECT_EQ(m.total_size, 300u);

  // Different sizes in the two lists.
  dict mismatch = info;
  mismatch["file tree"] = dict{{"a", v2_leaf(101, r1)}, {"b", v2_leaf(200, r2)}};
  EXPECT_NE(parse_bad(torrent(mismatch)).detail.find("inconsistent hybrid"), std::string::npos);
  // A file missing from the v1 list.
  dict extra = info;
  extra["file tree"] = dict{{"a", v2_leaf(100, r1)}, {"b", v2_leaf(200, r2)}, {"c", v2_leaf(1, r2)}};
  EXPECT_NE(parse_bad(torrent(extra)).detail.find("inconsistent hybrid"), std::string::npos);
  // No pad file: "b" would start mid-piece.
  dict unaligned = multi_info(list{file_dict(list{"a"}, 100), file_dict(list{"b"}, 200)}, 300, plen);
  unaligned["meta version"] = 2;
  unaligned["file tree"] = tree;
  EXPECT_NE(
      parse_bad(torrent(unaligned))
          .detail.find("info.files[1]: 'b' starts at byte 100 in the v1 file list but at 16384 in the v2 file tree"),
      std::string::npos);
  // A pad file a whole piece too long: "b" is aligned in v1, but not where v2 puts it.
  dict longpad = multi_info(
      list{file_dict(list{"a"}, 100), file_dict(list{".pad", "x"}, 2 * plen - 100, "p"), file_dict(list{"b"}, 200)},
      2 * plen + 200, plen);
  longpad["meta version"] = 2;
  longpad["file tree"] = tree;
  EXPECT_NE(parse_bad(torrent(longpad)).detail.find("starts at byte 32768 in the v1 file list but at 16384"),
            std::string::npos);
  // A pad file at the end a piece too long: one v1 piece more than the v2 layout has.
  dict tailpad = multi_info(list{file_dict(list{"a"}, 100), file_dict(list{".pad", "16284"}, plen - 100, "p"),
                                 file_dict(list{"b"}, 200), file_dict(list{".pad", "y"}, 2 * plen - 200, "p")},
                            3 * plen, plen);
  tailpad["meta version"] = 2;
  tailpad["file tree"] = tree;
  EXPECT_NE(parse_bad(torrent(tailpad)).detail.find("the v1 file list spans 3 pieces but the v2 file tree 2"),
            std::string::npos);
}

TEST(Metainfo, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "d4:info" + std::string(5000, 'l') + std::string(5000, 'e') + "e";
  EXPECT_EQ(parse_bad(deep).code, errc::limit_exceeded);
}

TEST(Metainfo, LoadReportsAMissingFile) {
  auto r = load_metainfo("/nonexistent/x.torrent");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::io);
}

TEST(Metainfo, LoadRejectsOversizedFileBeforeReading) {
  // Sparse files, so they cost no disk: one byte over the limit, and 1 TiB, which a loader
  // that read first would try to hold in memory (and fail with bad_alloc or the OOM killer,
  // not with limit_exceeded).
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("shoal-oversized-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (std::uintmax_t size : {std::uintmax_t{max_torrent_size} + 1, std::uintmax_t{1} << 40}) {
    const auto file = dir / ("big-" + std::to_string(size) + ".torrent");
    { std::ofstream(file, std::ios::binary) << "d4:info"; }
    std::filesystem::resize_file(file, size);
    auto r = load_metainfo(file);
    ASSERT_FALSE(r.ok()) << size;
    EXPECT_EQ(r.err().code, errc::limit_exceeded) << r.err().message();
    EXPECT_NE(r.err().message().find("over the .torrent limit"), std::string::npos) << r.err().message();
  }
  std::filesystem::remove_all(dir);
}

TEST(Metainfo, ManyDuplicateNamesStayLinear) {
  // 100k files with one name: renaming must not try every earlier suffix again.
  constexpr int n = 100000;
  list files;
  files.reserve(n);
  for (int i = 0; i < n; ++i)
    files.push_back(file_dict(list{"same"}, 1));
  const std::string bytes = torrent(multi_info(std::move(files), n));
  // Linear renaming takes well under a second here even under ASan; trying every earlier
  // suffix for each duplicate is n^2/2 = 5e9 lookups, minutes. The bound is that far apart
  // from both, so it holds on a loaded machine and still fails a quadratic renamer.
  const auto start = std::chrono::steady_clock::now();
  auto m = parse_ok(bytes);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(20));
  ASSERT_EQ(m.files.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(m.files[0].path, "folder/same");
  EXPECT_EQ(m.files[n - 1].path, "folder/same." + std::to_string(n - 1));
  EXPECT_EQ(m.warnings.size(), static_cast<std::size_t>(n - 1));
}

TEST(Metainfo, LongNamesCostNoMoreThanShortOnes) {
  // One 1 MB folder name holding 2000 files: messages and warnings must not copy it per file.
  const std::string longname(1 << 20, 'd');
  dict folder;
  for (int i = 0; i < 2000; ++i)
    folder["f" + std::to_string(i)] = dict{{"", dict{{"length", 0}}}};
  folder["f0"] = v2_leaf(1, sha256("x"));  // one byte of data: a torrent with none is refused
  dict info{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", dict{{longname, folder}}}};
  auto m = parse_ok(torrent(info));
  ASSERT_EQ(m.files.size(), 2000u);
  std::size_t warning_bytes = 0;
  for (const auto& w : m.warnings)
    warning_bytes += w.size();
  EXPECT_LT(warning_bytes, 2000u * 1200u);
  EXPECT_LE(m.files[0].path.size(), 2 + 1 + max_component_bytes + 1 + 5);
}

// Torrents libtorrent 2.0.8 refuses, and so does shoal, each with an error naming the field.
TEST(Metainfo, ZeroLengthTorrentsAreRefused) {
  EXPECT_NE(parse_bad(torrent(single_info(0))).detail.find("info: total length is 0"), std::string::npos);
  EXPECT_NE(parse_bad(torrent(multi_info(list{file_dict(list{"a"}, 0), file_dict(list{"b"}, 0)}, 0)))
                .detail.find("info: total length is 0"),
            std::string::npos);
  dict tree{{"e", v2_leaf(0, {})}};
  EXPECT_NE(parse_bad(torrent(dict{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", tree}}))
                .detail.find("info: total length is 0"),
            std::string::npos);
  // One byte is enough.
  EXPECT_TRUE(parse_metainfo(torrent(single_info(1))).ok());
}

TEST(Metainfo, V2FileWithoutARealRootIsRefused) {
  dict zero{{"f", dict{{"", dict{{"length", 10}, {"pieces root", std::string(32, '\0')}}}}}};
  const auto e =
      parse_bad(torrent(dict{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", zero}}));
  EXPECT_NE(e.detail.find("info.file tree/f.pieces root: is all zeros"), std::string::npos) << e.detail;
  dict none{{"f", dict{{"", dict{{"length", 10}}}}}};
  EXPECT_NE(parse_bad(torrent(dict{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", none}}))
                .detail.find("info.file tree/f.pieces root: missing"),
            std::string::npos);
}

TEST(Metainfo, PadAttributeOnAV2FileIsRefused) {
  const sha256_digest r = sha256("r");
  dict padded{{"length", 10}, {"pieces root", digest_str(r)}, {"attr", "p"}};
  dict tree{{"a", v2_leaf(10, r)}, {"p", dict{{"", padded}}}};
  const auto e =
      parse_bad(torrent(dict{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", tree}}));
  EXPECT_NE(e.detail.find("info.file tree/p.attr: the pad attribute 'p' is not allowed on a v2 file"),
            std::string::npos)
      << e.detail;
  // Other attributes stay fine.
  dict exec{{"length", 10}, {"pieces root", digest_str(r)}, {"attr", "x"}};
  EXPECT_TRUE(parse_metainfo(torrent(dict{{"name", "n"},
                                          {"piece length", 16384},
                                          {"meta version", 2},
                                          {"file tree", dict{{"x", dict{{"", exec}}}}}}))
                  .ok());
}

TEST(Metainfo, V2InfoDictionaryMustBeCanonical) {
  const sha256_digest r = sha256("r");
  dict info{{"name", "n"}, {"piece length", 16384}, {"meta version", 2}, {"file tree", dict{{"f", v2_leaf(10, r)}}}};
  const std::string good = torrent(info);
  ASSERT_TRUE(parse_metainfo(good).ok());
  // Keys out of order: "name" moved behind "piece length".
  std::string unsorted = good;
  const std::string name = "4:name1:n";
  const std::string pl = "12:piece lengthi16384e";
  unsorted.erase(unsorted.find(name), name.size());
  unsorted.insert(unsorted.find(pl) + pl.size(), name);
  ASSERT_NE(unsorted, good);
  auto e = parse_bad(unsorted);
  EXPECT_NE(e.detail.find("info: a v2 info dictionary must be canonical bencoding"), std::string::npos) << e.detail;
  EXPECT_NE(e.offset, no_offset);
  // A leading zero, and -0.
  std::string lead = good;
  lead.replace(lead.find("i16384e"), 7, "i016384e");
  EXPECT_NE(parse_bad(lead).detail.find("must be canonical bencoding"), std::string::npos);
  dict info0 = info;
  info0["x-extra"] = 1;
  std::string neg = torrent(info0);
  neg.replace(neg.find("7:x-extrai1e"), 12, "7:x-extrai-0e");
  EXPECT_NE(parse_bad(neg).detail.find("must be canonical bencoding"), std::string::npos);
  // Outside the info dictionary, and in v1 torrents, lenient decoding stays (old encoders).
  std::string v1 = torrent(single_info(100));
  v1.replace(v1.find("i100e"), 5, "i0100e");
  EXPECT_TRUE(parse_metainfo(v1).ok());
}

TEST(Metainfo, FileWithAnEmptyPathIsRefused) {
  const auto e = parse_bad(torrent(multi_info(list{file_dict(list{"a"}, 10), file_dict(list{}, 10)}, 20)));
  EXPECT_NE(e.detail.find("info.files[1].path: empty list: a file needs a name"), std::string::npos) << e.detail;
}
