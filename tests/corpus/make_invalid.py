#!/usr/bin/python3
"""Writes the invalid part of the corpus (tests/corpus/invalid/) and the torrents that load
with a warning (tests/corpus/warn/).

Each case takes a valid torrent from tests/corpus/valid/, breaks one thing in it and
writes CASE.torrent plus CASE.json: what is broken and a substring the error must
contain (`shoal info` must exit non-zero with it). libtorrent 2.0.8 refuses every
invalid case as well, except '.' and '..' in a v2 file tree, which it renames. A warn case is damage outside the info dictionary that libtorrent
accepts (a piece layer that does not hash to its root): shoal loads it, drops the layer and
says so; CASE.json holds a substring of that warning. Regenerate with

    /usr/bin/python3 tests/corpus/make_invalid.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import bencoding  # noqa: E402

VALID = os.path.join(HERE, "valid")
INVALID = os.path.join(HERE, "invalid")
WARN = os.path.join(HERE, "warn")
FUZZ_CORPUS = os.path.join(HERE, "..", "..", "fuzz", "corpus", "metainfo")
FUZZ_MAX_LEN = 4096  # the fuzz corpora's input limit (docs/FUZZING.md)


def load(name):
    with open(os.path.join(VALID, name), "rb") as f:
        return bencoding.decode(f.read())


def only_layer(t):
    """The single piece layer of a torrent with one file that has one."""
    layers = t[b"piece layers"]
    assert len(layers) == 1
    return next(iter(layers))


def layer_too_short():
    t = load("medium-16k.v2.torrent")
    k = only_layer(t)
    t[b"piece layers"][k] = t[b"piece layers"][k][:-32]
    return t


def layer_wrong_root():
    t = load("medium-16k.v2.torrent")
    k = only_layer(t)
    layer = bytearray(t[b"piece layers"][k])
    layer[40] ^= 0x01
    t[b"piece layers"][k] = bytes(layer)
    return t


def layer_wrong_root_hybrid():
    t = load("large-1m.hybrid.torrent")
    k = only_layer(t)
    layer = bytearray(t[b"piece layers"][k])
    layer[-1] ^= 0x80
    t[b"piece layers"][k] = bytes(layer)
    return t


def zero_length():
    t = load("tiny-only.v2.torrent")
    def empty(tree):
        for k, v in tree.items():
            if k == b"":
                v[b"length"] = 0
                v.pop(b"pieces root", None)
            else:
                empty(v)
    empty(t[b"info"][b"file tree"])
    t.pop(b"piece layers", None)
    return t


def v2_pad_attr():
    t = load("single-smaller.v2.torrent")
    t[b"info"][b"file tree"][b"small.bin"][b""][b"attr"] = b"p"
    return t


def v2_zero_root():
    t = load("single-smaller.v2.torrent")
    t[b"info"][b"file tree"][b"small.bin"][b""][b"pieces root"] = b"\0" * 32
    return t


def v2_unsorted_keys():
    """Raw bytes: 'name' moved after 'piece length' inside the info dictionary."""
    t = load("single-smaller.v2.torrent")
    name = t[b"info"][b"name"]
    raw = bencoding.encode(t)
    entry = b"4:name" + str(len(name)).encode() + b":" + name
    pl = b"12:piece lengthi" + str(t[b"info"][b"piece length"]).encode() + b"e"
    assert raw.count(entry) == 1 and raw.count(pl) == 1
    return raw.replace(entry, b"").replace(pl, pl + entry)


def v2_leading_zero():
    t = load("single-smaller.v2.torrent")
    raw = bencoding.encode(t)
    pl = b"12:piece lengthi" + str(t[b"info"][b"piece length"]).encode() + b"e"
    assert raw.count(pl) == 1
    return raw.replace(pl, pl.replace(b"lengthi", b"lengthi0"))


def hybrid_empty_path():
    t = load("many-files.hybrid.torrent")
    t[b"info"][b"files"][0][b"path"] = []
    return t


def pieces_root_short():
    t = load("piece-edges.v2.torrent")
    leaf = t[b"info"][b"file tree"][b"over.bin"][b""]
    leaf[b"pieces root"] = leaf[b"pieces root"][:31]
    return t


def pieces_root_long():
    t = load("single-smaller.v2.torrent")
    leaf = t[b"info"][b"file tree"][b"small.bin"][b""]
    leaf[b"pieces root"] = leaf[b"pieces root"] + b"\0"
    return t


def file_and_dir():
    t = load("empty-files.v2.torrent")
    tree = t[b"info"][b"file tree"]
    # "c" is a folder; make it a file as well.
    tree[b"c"][b""] = {b"length": 0}
    return t


def hybrid_pieces_count():
    t = load("pad-files.hybrid.torrent")
    t[b"info"][b"pieces"] = t[b"info"][b"pieces"][:-20]
    return t


def hybrid_missing_pad():
    t = load("pad-files.hybrid.torrent")
    files = t[b"info"][b"files"]
    first_pad = next(i for i, f in enumerate(files) if b"p" in f.get(b"attr", b""))
    del files[first_pad]
    # Keep the v1 piece count right so that the layout is what is wrong.
    return t


def hybrid_pad_too_long():
    t = load("pad-files.hybrid.torrent")
    files = t[b"info"][b"files"]
    pad = next(f for f in files if b"p" in f.get(b"attr", b""))
    plen = t[b"info"][b"piece length"]
    pad[b"length"] += plen
    pad[b"path"] = [b".pad", str(pad[b"length"]).encode()]
    t[b"info"][b"pieces"] += b"\0" * 20
    return t


def piece_length_not_pow2():
    t = load("single-smaller.v2.torrent")
    t[b"info"][b"piece length"] = 3 * 16384
    return t


def piece_length_small():
    t = load("single-smaller.v2.torrent")
    t[b"info"][b"piece length"] = 8192
    return t


def hybrid_piece_length_not_pow2():
    t = load("single-smaller.hybrid.torrent")
    t[b"info"][b"piece length"] = 20000
    return t


def meta_version_3():
    t = load("single-smaller.v2.torrent")
    t[b"info"][b"meta version"] = 3
    return t


def empty_tree():
    t = load("single-smaller.v2.torrent")
    t[b"info"][b"file tree"] = {}
    t.pop(b"piece layers", None)
    return t


def traversal():
    t = load("empty-files.v2.torrent")
    tree = t[b"info"][b"file tree"]
    tree[b".."] = {b"etc": {b"passwd": tree.pop(b"b.txt")}}
    return t


def traversal_dot():
    t = load("empty-files.v2.torrent")
    tree = t[b"info"][b"file tree"]
    tree[b"c"][b"."] = {b"x": tree[b"c"].pop(b"d.bin")}
    return t


def traversal_hybrid():
    t = load("tiny-only.hybrid.torrent")
    info = t[b"info"]
    tree = info[b"file tree"]
    tree[b".."] = tree.pop(b"one.txt")
    for f in info[b"files"]:
        if f[b"path"] == [b"one.txt"]:
            f[b"path"] = [b".."]
    return t


CASES = [
    ("v2-layer-too-short", layer_too_short, "piece layers", "the piece layer of a file has one hash too few",
     "piece layers: the layer for 'medium.bin' is 2048 bytes, expected 2080"),
    ("v2-zero-length", zero_length, "info", "every file empty: no data at all",
     "info: total length is 0"),
    ("v2-pad-attr", v2_pad_attr, "info.file tree/small.bin.attr", "the pad attribute on a v2 file",
     "info.file tree/small.bin.attr: the pad attribute 'p' is not allowed on a v2 file"),
    ("v2-zero-root", v2_zero_root, "info.file tree/small.bin.pieces root", "a pieces root of 32 zero bytes",
     "info.file tree/small.bin.pieces root: is all zeros"),
    ("v2-unsorted-keys", v2_unsorted_keys, "info", "info dictionary keys out of order",
     "info: a v2 info dictionary must be canonical bencoding"),
    ("v2-leading-zero", v2_leading_zero, "info", "an integer with a leading zero in the info dictionary",
     "info: a v2 info dictionary must be canonical bencoding"),
    ("hybrid-empty-path", hybrid_empty_path, "info.files[0].path", "a v1 file entry whose path is an empty list",
     "info.files[0].path: empty list"),
    ("v2-pieces-root-31", pieces_root_short, "info.file tree/over.bin.pieces root", "a pieces root of 31 bytes",
     "info.file tree/over.bin.pieces root: expected 32 bytes, is 31"),
    ("v2-pieces-root-33", pieces_root_long, "info.file tree/small.bin.pieces root", "a pieces root of 33 bytes",
     "info.file tree/small.bin.pieces root: expected 32 bytes, is 33"),
    ("v2-file-and-dir", file_and_dir, "info.file tree/c", "'c' is both a file and a folder",
     "info.file tree/c: is both a file and a directory"),
    ("hybrid-pieces-count", hybrid_pieces_count, "info.pieces", "one v1 piece hash fewer than the layout needs",
     "info.pieces: 7 piece hashes"),
    ("hybrid-missing-pad", hybrid_missing_pad, "info.files[1]", "the first pad file removed from the v1 list",
     "info.files[1]: 'part1.bin' starts at byte 1000 in the v1 file list but at 32768 in the v2 file tree"),
    ("hybrid-pad-too-long", hybrid_pad_too_long, "info.files[2]",
     "a pad file a piece longer than needed (v1 layout aligned, but not the v2 one)",
     "info.files[2]: 'part1.bin' starts at byte 65536 in the v1 file list but at 32768 in the v2 file tree"),
    ("v2-piece-length-48k", piece_length_not_pow2, "info.piece length", "piece length 49152, not a power of two",
     "info.piece length: must be a power of two of at least 16 KiB in a v2 torrent, is 49152"),
    ("v2-piece-length-8k", piece_length_small, "info.piece length", "piece length 8192, below 16 KiB",
     "info.piece length: must be a power of two of at least 16 KiB in a v2 torrent, is 8192"),
    ("hybrid-piece-length-20000", hybrid_piece_length_not_pow2, "info.piece length",
     "a hybrid with piece length 20000", "info.piece length: must be a power of two of at least 16 KiB"),
    ("meta-version-3", meta_version_3, "info.meta version", "meta version 3",
     "info.meta version: unsupported version 3"),
    ("v2-empty-tree", empty_tree, "info.file tree", "an empty file tree", "info.file tree: has no files"),
    ("v2-traversal-dotdot", traversal, "info.file tree/..", "a folder named '..' in the file tree",
     "info.file tree/..: '..' is not a valid name (path traversal)"),
    ("v2-traversal-dot", traversal_dot, "info.file tree/c/.", "a folder named '.' in the file tree",
     "info.file tree/c/.: '.' is not a valid name (path traversal)"),
    ("hybrid-traversal-dotdot", traversal_hybrid, "info.file tree/..", "a file named '..' in a hybrid's file tree",
     "info.file tree/..: '..' is not a valid name (path traversal)"),
]


WARN_CASES = [
    ("v2-layer-wrong-root", layer_wrong_root, "a piece layer that does not hash to the file's root",
     "piece layer for 'medium.bin' does not hash to the file's pieces root: dropped"),
    ("hybrid-layer-wrong-root", layer_wrong_root_hybrid, "a hybrid's piece layer that does not hash to the file's root",
     "piece layer for 'large.bin' does not hash to the file's pieces root: dropped"),
]


def write_cases(folder, cases, key):
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    for case in cases:
        name, build, text = case[0], case[1], case[-1]
        t = build()
        with open(os.path.join(folder, name + ".torrent"), "wb") as f:
            f.write(t if isinstance(t, bytes) else bencoding.encode(t))
        desc = {"what": case[-2], key: text}
        if len(case) == 5:
            desc["where"] = case[2]
        with open(os.path.join(folder, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(desc, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name)


def main():
    write_cases(INVALID, CASES, "error")
    write_cases(WARN, WARN_CASES, "warning")
    copy_to_fuzz_corpus()
    return 0


def copy_to_fuzz_corpus():
    """Every corpus torrent within the fuzzers' input limit seeds fuzz_metainfo too."""
    for old in os.listdir(FUZZ_CORPUS):
        if old.startswith("corpus-"):
            os.remove(os.path.join(FUZZ_CORPUS, old))
    for kind, folder in (("valid", VALID), ("invalid", INVALID), ("warn", WARN)):
        for n in sorted(os.listdir(folder)):
            src = os.path.join(folder, n)
            if n.endswith(".torrent") and os.path.getsize(src) <= FUZZ_MAX_LEN:
                with open(src, "rb") as f, open(os.path.join(FUZZ_CORPUS, f"corpus-{kind}-{n}"), "wb") as g:
                    g.write(f.read())


if __name__ == "__main__":
    sys.exit(main())
