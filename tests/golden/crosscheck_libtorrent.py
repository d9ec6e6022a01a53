#!/usr/bin/python3
"""The golden files of `shoal info` are written from shoal's own output (run.sh --update),
so on their own they only prove that the output did not change. This checks what they
say against libtorrent's reading of the same .torrent files: info-hashes, piece size and
count, total size, the torrent's name, and every file's path, size and offset, pad files
included (libtorrent flags them; shoal lists them apart); and for each golden magnet link,
its name, info-hashes, trackers, web seeds and peers against libtorrent's parse_magnet_uri.
The hostile-names torrent is the one exception for names and paths: each client sanitises
hostile names its own way, so there only sizes and offsets must agree.

Usage: crosscheck_libtorrent.py GOLDEN_DIR
"""
import json
import os
import re
import sys
import urllib.parse

import libtorrent as lt

NAMES_DIFFER = {"hostile-names.torrent"}


def main():
    folder = sys.argv[1]
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(("PASS" if ok else "FAIL") + f": {name}" + ("" if ok or not detail else f": {detail}"), flush=True)
        passed, failed = passed + ok, failed + (not ok)

    torrents = sorted(f for f in os.listdir(folder) if f.endswith(".torrent"))
    check("golden torrents found", len(torrents) >= 4, str(torrents))
    for t in torrents:
        # The golden file holds stdout and stderr and the exit code: the JSON is its one line
        # that starts with "{".
        lines = open(os.path.join(folder, t[:-len(".torrent")] + ".json")).read().splitlines()
        golden = json.loads(next(line for line in lines if line.startswith("{")))
        ti = lt.torrent_info(os.path.join(folder, t))
        ih = ti.info_hashes()
        v1 = str(ih.v1) if ih.has_v1() else None
        v2 = str(ih.v2) if ih.has_v2() else None
        check(f"{t}: info-hashes", golden.get("info_hash_v1") == v1 and golden.get("info_hash_v2") == v2,
              f"golden {golden.get('info_hash_v1')} {golden.get('info_hash_v2')}, libtorrent {v1} {v2}")
        if t not in NAMES_DIFFER:
            check(f"{t}: name", golden.get("name") == ti.name(), f"golden {golden.get('name')!r}, libtorrent "
                  f"{ti.name()!r}")
        fs = ti.files()
        lt_files, lt_pads = [], []
        for i in range(fs.num_files()):
            entry = {"path": fs.file_path(i).replace(os.sep, "/"), "size": fs.file_size(i), "offset": fs.file_offset(i)}
            (lt_pads if fs.file_flags(i) & lt.file_storage.flag_pad_file else lt_files).append(entry)
        # libtorrent pads a v2 torrent's last file up to a whole piece in its own storage
        # (BEP 52 aligns every file to a piece); that pad is not in the torrent, so shoal
        # does not list it.
        if v2 and lt_pads and fs.file_flags(fs.num_files() - 1) & lt.file_storage.flag_pad_file:
            lt_pads.pop()
        check(f"{t}: piece size, piece count, total size",
              (golden["piece_size"], golden["piece_count"], golden["total_size"]) ==
              (ti.piece_length(), ti.num_pieces(), sum(f["size"] for f in lt_files)),
              f"golden {(golden['piece_size'], golden['piece_count'], golden['total_size'])}, libtorrent "
              f"{(ti.piece_length(), ti.num_pieces(), sum(f['size'] for f in lt_files))}")
        keys = ("size", "offset") if t in NAMES_DIFFER else ("path", "size", "offset")
        pick = lambda files: [tuple(f[k] for k in keys) for f in files]  # noqa: E731
        check(f"{t}: files ({', '.join(keys)})", pick(golden["files"]) == pick(lt_files),
              f"golden {pick(golden['files'])}\n  libtorrent {pick(lt_files)}")
        # Pad files: libtorrent names them .pad/N too, but only where they sit and how long
        # they are is the torrent's meaning.
        pads = lambda files: [(f["size"], f["offset"]) for f in files]  # noqa: E731
        check(f"{t}: pad files (size, offset)", pads(golden["pad_files"]) == pads(lt_pads),
              f"golden {pads(golden['pad_files'])}, libtorrent {pads(lt_pads)}")
    magnets = sorted(f for f in os.listdir(folder) if f.endswith(".magnet"))
    check("golden magnet links found", len(magnets) >= 3, str(magnets))
    for m in magnets:
        link = open(os.path.join(folder, m)).read().strip()
        lines = open(os.path.join(folder, m + ".json")).read().splitlines()
        golden = json.loads(next(line for line in lines if line.startswith("{")))
        # libtorrent 2.0.8 does not percent-decode x.pe (it drops "127.0.0.1%3A6881"), which
        # every other parameter gets: it is handed the decoded address.
        p = lt.parse_magnet_uri(re.sub(r"x\.pe=([^&]*)", lambda g: "x.pe=" + urllib.parse.unquote(g.group(1)), link))
        ih = p.info_hashes
        v1 = str(ih.v1) if ih.has_v1() else None
        v2 = str(ih.v2) if ih.has_v2() else None
        check(f"{m}: info-hashes", (golden.get("info_hash_v1"), golden.get("info_hash_v2")) == (v1, v2),
              f"golden {golden.get('info_hash_v1')} {golden.get('info_hash_v2')}, libtorrent {v1} {v2}")
        check(f"{m}: name", (golden.get("name") or "") == p.name, f"golden {golden.get('name')!r}, libtorrent "
              f"{p.name!r}")
        check(f"{m}: trackers", golden.get("trackers", []) == list(p.trackers),
              f"golden {golden.get('trackers')}, libtorrent {list(p.trackers)}")
        check(f"{m}: web seeds", golden.get("web_seeds", []) == list(p.url_seeds),
              f"golden {golden.get('web_seeds')}, libtorrent {list(p.url_seeds)}")
        lt_peers = [f"{a}:{port}" if ":" not in a else f"[{a}]:{port}" for a, port in p.peers]
        check(f"{m}: peers", golden.get("peers", []) == lt_peers, f"golden {golden.get('peers')}, libtorrent {lt_peers}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
