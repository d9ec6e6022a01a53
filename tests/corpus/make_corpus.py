#!/usr/bin/python3
"""Writes the valid part of the v2/hybrid torrent corpus (tests/corpus/valid/).

Each case is a small data set generated here from fixed seeds, turned into a v2-only
and a hybrid torrent by libtorrent's create_torrent, and described in CASE.json by
what libtorrent reads back from the written file: info-hashes, name, sizes, piece
length and count, and every file of the layout (path, size, offset, pad flag, symlink
target). The committed files are what tests/interop/corpus_test.py checks; this script
is only needed to regenerate them:

    /usr/bin/python3 tests/corpus/make_corpus.py

libtorrent 2.0.8 (the system's python3-libtorrent) wrote the committed files.
"""

import json
import os
import random
import shutil
import sys
import tempfile

import libtorrent as lt

HERE = os.path.dirname(os.path.abspath(__file__))
VALID = os.path.join(HERE, "valid")
KIB = 1024
MIB = 1024 * KIB


def data(seed, size):
    """Deterministic bytes: random for small sizes, mostly zeros with random runs above."""
    rng = random.Random(seed)
    if size <= 4 * MIB:
        return rng.randbytes(size)
    out = bytearray(size)
    # One random 4 KiB run per 256 KiB keeps every piece distinct and the data cheap.
    for pos in range(0, size, 256 * KIB):
        n = min(4 * KIB, size - pos)
        out[pos:pos + n] = rng.randbytes(n)
    return bytes(out)


def write(root, rel, size, seed):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data(seed, size))


# Each case: name -> (builder(tmp) returning the path to share, piece size, extra flags).
def many_files(tmp):
    root = os.path.join(tmp, "many")
    rng = random.Random(52)
    n = 0
    for d in ("", "a", "a/b", "a/b/c", "docs", "docs/2026", "z"):
        for i in range(8):
            size = rng.choice([0, 1, 100, 5000, 16 * KIB, 16 * KIB + 1, 40000])
            write(root, os.path.join(d, f"file{i:02d}.dat"), size, 1000 + n)
            n += 1
    return root


def empty_files(tmp):
    root = os.path.join(tmp, "empties")
    write(root, "a.empty", 0, 1)
    write(root, "b.txt", 3000, 2)
    write(root, "c/empty", 0, 3)
    write(root, "c/d.bin", 20000, 4)
    write(root, "e.empty", 0, 5)
    return root


def tiny_only(tmp):
    root = os.path.join(tmp, "tiny")
    write(root, "empty1", 0, 1)
    write(root, "one.txt", 1, 2)
    write(root, "sub/empty2", 0, 3)
    return root


def large_file(tmp):
    path = os.path.join(tmp, "large.bin")
    with open(path, "wb") as f:
        f.write(data(40, 40 * MIB))
    return path


def pad_files(tmp):
    root = os.path.join(tmp, "padded")
    for i, size in enumerate([1000, 16 * KIB - 1, 70000, 5, 3 * 16 * KIB + 7]):
        write(root, f"part{i}.bin", size, 300 + i)
    return root


def symlinks(tmp):
    root = os.path.join(tmp, "links")
    write(root, "data/real.bin", 30000, 7)
    write(root, "other.txt", 500, 8)
    os.symlink("data/real.bin", os.path.join(root, "link-to-real"))
    os.symlink("../other.txt", os.path.join(root, "data/link-up"))
    return root


def piece_edges(tmp):
    root = os.path.join(tmp, "edges")
    write(root, "exact.bin", 32 * KIB, 11)
    write(root, "smaller.bin", 32 * KIB - 1, 12)
    write(root, "over.bin", 32 * KIB + 1, 13)
    return root


def single_exact(tmp):
    path = os.path.join(tmp, "exact-piece.bin")
    with open(path, "wb") as f:
        f.write(data(21, 32 * KIB))
    return path


def single_over(tmp):
    path = os.path.join(tmp, "one-over.bin")
    with open(path, "wb") as f:
        f.write(data(22, 32 * KIB + 1))
    return path


def single_small(tmp):
    path = os.path.join(tmp, "small.bin")
    with open(path, "wb") as f:
        f.write(data(23, 1000))
    return path


def medium_file(tmp):
    path = os.path.join(tmp, "medium.bin")
    with open(path, "wb") as f:
        f.write(data(24, MIB + 5))
    return path


def unicode_names(tmp):
    root = os.path.join(tmp, "Ünïcødé ファイル")
    write(root, "café/crème brûlée.txt", 2000, 31)
    write(root, "日本語/テスト.bin", 20000, 32)
    write(root, "emoji 🎵/song ♫.flac", 5000, 33)
    write(root, "Ελληνικά.txt", 10, 34)
    return root


CASES = [
    ("many-files", many_files, 16 * KIB, 0),
    ("empty-files", empty_files, 16 * KIB, 0),
    ("tiny-only", tiny_only, 16 * KIB, 0),
    ("large-64k", large_file, 64 * KIB, 0),
    ("large-1m", large_file, MIB, 0),
    ("large-4m", large_file, 4 * MIB, 0),
    ("pad-files", pad_files, 32 * KIB, 0),
    ("symlinks", symlinks, 16 * KIB, lt.create_torrent.symlinks),
    ("piece-edges", piece_edges, 32 * KIB, 0),
    ("single-exact-piece", single_exact, 32 * KIB, 0),
    ("single-one-over", single_over, 32 * KIB, 0),
    ("single-smaller", single_small, 32 * KIB, 0),
    ("medium-16k", medium_file, 16 * KIB, 0),
    ("unicode", unicode_names, 16 * KIB, 0),
]


def make(path, piece_size, flags):
    fs = lt.file_storage()
    lt.add_files(fs, path, flags=flags)
    ct = lt.create_torrent(fs, piece_size, flags)
    ct.set_creator("shoal corpus (libtorrent 2.0.8)")
    lt.set_piece_hashes(ct, os.path.dirname(path))
    entry = ct.generate()
    entry.pop(b"creation date", None)
    entry.pop("creation date", None)
    return lt.bencode(entry)


def describe(torrent_file):
    ti = lt.torrent_info(torrent_file)
    fs = ti.files()
    ih = ti.info_hashes()
    files = []
    for i in range(fs.num_files()):
        flags = fs.file_flags(i)
        f = {
            "path": fs.file_path(i).replace(os.sep, "/"),
            "size": fs.file_size(i),
            "offset": fs.file_offset(i),
            "pad": bool(flags & lt.file_storage.flag_pad_file),
        }
        if flags & lt.file_storage.flag_symlink:
            f["symlink_target"] = fs.symlink(i).replace(os.sep, "/")
        files.append(f)
    return {
        "info_hash_v1": str(ih.v1) if ih.has_v1() else None,
        "info_hash_v2": str(ih.v2) if ih.has_v2() else None,
        "name": ti.name(),
        "total_size": fs.total_size(),
        "total_size_excluding_pads": sum(f["size"] for f in files if not f["pad"]),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "multi_file": fs.num_files() > 1 or "/" in files[0]["path"],
        "files": files,
    }


def main():
    os.makedirs(VALID, exist_ok=True)
    for old in os.listdir(VALID):
        os.remove(os.path.join(VALID, old))
    tmp = tempfile.mkdtemp(prefix="shoal-corpus-")
    try:
        for name, build, piece_size, flags in CASES:
            case_tmp = os.path.join(tmp, name)
            os.makedirs(case_tmp)
            path = build(case_tmp)
            for kind, extra in (("v2", lt.create_torrent.v2_only), ("hybrid", 0)):
                out = os.path.join(VALID, f"{name}.{kind}.torrent")
                with open(out, "wb") as f:
                    f.write(make(path, piece_size, flags | extra))
                desc = describe(out)
                desc["version"] = kind
                with open(out[: -len(".torrent")] + ".json", "w", encoding="utf-8") as f:
                    json.dump(desc, f, indent=1, ensure_ascii=False, sort_keys=True)
                    f.write("\n")
                print(f"{out}: {os.path.getsize(out)} bytes, {len(desc['files'])} files")
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
