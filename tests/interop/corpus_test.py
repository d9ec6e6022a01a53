#!/usr/bin/python3
"""Checks `shoal info --json` against the v2/hybrid corpus in tests/corpus/.

valid/NAME.torrent: made by libtorrent (tests/corpus/make_corpus.py); NAME.json holds
what libtorrent reads from it. shoal must agree on the info-hashes, name, total size,
piece length and count, and the whole file layout: paths, sizes, offsets, symlink
targets, and (where the torrent has a v1 file list) the pad files.

invalid/NAME.torrent: hand-made broken torrents (tests/corpus/make_invalid.py); shoal
must exit non-zero with an error containing the substring in NAME.json, and libtorrent
must refuse them too (but for the '.'/'..' names it renames: LIBTORRENT_ACCEPTS).

warn/NAME.torrent: damage outside the info dictionary that libtorrent accepts (a piece
layer that does not hash to its file's root); shoal must load it, with a warning
containing the substring in NAME.json, and leave that layer out.

    /usr/bin/python3 tests/interop/corpus_test.py --shoal build/shoal
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")
# libtorrent 2.0.8 writes a symlink's target as read from the disk, relative to the link's
# folder (['..', 'other.txt']), where BEP 47 wants it relative to the torrent's root and
# without '..'. shoal drops the '..' (as libtorrent does when reading) and says so.
EXPECTED_WARNINGS = {
    "symlinks.v2.torrent": ["file 0 symlink target: name '../other.txt' shown as 'other.txt'"],
    "symlinks.hybrid.torrent": ["file 0 symlink target: name '../other.txt' shown as 'other.txt'"],
}


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, label, expected, actual):
        if expected == actual:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {label}\n      expected: {expected!r}\n      actual:   {actual!r}")

    def expect(self, label, condition, detail=""):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {label}" + (f"\n      {detail}" if detail else ""))


def shoal_info(shoal, path):
    p = subprocess.run([shoal, "info", "--json", path], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def strip_name(target, name, multi):
    """libtorrent shows a symlink target under the torrent's folder; shoal relative to it."""
    prefix = name + "/"
    if multi and target.startswith(prefix):
        return target[len(prefix):]
    return target


def check_valid(shoal, report, torrent, expected):
    label = os.path.basename(torrent)
    rc, out, err = shoal_info(shoal, torrent)
    if rc != 0:
        report.expect(f"{label}: loads", False, f"exit {rc}: {err.strip()}")
        return
    got = json.loads(out)
    report.check(f"{label}: info_hash_v1", expected["info_hash_v1"], got["info_hash_v1"])
    report.check(f"{label}: info_hash_v2", expected["info_hash_v2"], got["info_hash_v2"])
    report.check(f"{label}: version", expected["version"], got["version"])
    report.check(f"{label}: name", expected["name"], got["name"])
    report.check(f"{label}: total size", expected["total_size_excluding_pads"], got["total_size"])
    report.check(f"{label}: piece length", expected["piece_length"], got["piece_size"])
    report.check(f"{label}: piece count", expected["num_pieces"], got["piece_count"])

    multi = expected["multi_file"]
    want_files = []
    for f in expected["files"]:
        if f["pad"]:
            continue
        entry = {"path": f["path"], "size": f["size"], "offset": f["offset"]}
        if "symlink_target" in f:
            entry["symlink_target"] = strip_name(f["symlink_target"], expected["name"], multi)
        want_files.append(entry)
    got_files = []
    for f in got["files"]:
        entry = {"path": f["path"], "size": f["size"], "offset": f["offset"]}
        if "symlink_target" in f:
            entry["symlink_target"] = f["symlink_target"]
        got_files.append(entry)
    report.check(f"{label}: files", want_files, got_files)

    # libtorrent also pads v2-only torrents in memory; only a v1 file list has real pads.
    if expected["info_hash_v1"] is not None:
        want_pads = [(f["size"], f["offset"]) for f in expected["files"] if f["pad"]]
        got_pads = [(f["size"], f["offset"]) for f in got["pad_files"]]
        report.check(f"{label}: pad files", want_pads, got_pads)
    else:
        report.check(f"{label}: no pad files", [], got["pad_files"])
    # The last byte of the layout agrees with libtorrent's total (pads included), up to the
    # tail padding libtorrent adds in memory.
    ends = [f["offset"] + f["size"] for f in got["files"]] + [f["offset"] + f["size"] for f in got["pad_files"]]
    report.expect(f"{label}: layout ends within libtorrent's total", max(ends) <= expected["total_size"],
                  f"{max(ends)} > {expected['total_size']}")
    report.check(f"{label}: warnings", EXPECTED_WARNINGS.get(label, []), got["warnings"])


def check_invalid(shoal, report, torrent, expected):
    label = os.path.basename(torrent)
    rc, out, err = shoal_info(shoal, torrent)
    report.expect(f"{label}: refused", rc == 1, f"exit {rc}, stdout {out[:200]!r}")
    report.expect(f"{label}: says '{expected['error']}'", expected["error"] in err, f"stderr: {err.strip()}")
    report.expect(f"{label}: one line on stderr", err.count("\n") == 1, f"stderr: {err!r}")


# Refused by shoal on purpose where libtorrent 2.0.8 renames instead: BEP 52 has no legacy
# to excuse '.' and '..' in a file tree.
LIBTORRENT_ACCEPTS = {"v2-traversal-dot.torrent", "v2-traversal-dotdot.torrent"}


def libtorrent_refuses(torrent):
    """True/False when libtorrent's Python binding is there, None when it is not."""
    try:
        import libtorrent as lt
    except ImportError:
        return None
    try:
        lt.torrent_info(torrent)
        return False
    except RuntimeError:
        return True


def check_invalid_too_for_libtorrent(report, torrent):
    refused = libtorrent_refuses(torrent)
    label = os.path.basename(torrent)
    if refused is not None:
        report.expect(f"{label}: libtorrent refuses it too" if label not in LIBTORRENT_ACCEPTS
                      else f"{label}: libtorrent accepts it (renaming)", refused != (label in LIBTORRENT_ACCEPTS))


def check_warn(shoal, report, torrent, expected):
    label = os.path.basename(torrent)
    rc, out, err = shoal_info(shoal, torrent)
    report.expect(f"{label}: loads", rc == 0, f"exit {rc}: {err.strip()}")
    if rc != 0:
        return
    got = json.loads(out)
    report.expect(f"{label}: warns '{expected['warning']}'", any(expected["warning"] in w for w in got["warnings"]),
                  json.dumps(got["warnings"]))
    refused = libtorrent_refuses(torrent)
    if refused is not None:
        report.expect(f"{label}: libtorrent accepts it too", not refused)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    shoal = os.path.abspath(args.shoal)
    report = Report()
    counts = {}
    for kind, check in (("valid", check_valid), ("invalid", check_invalid), ("warn", check_warn)):
        folder = os.path.join(CORPUS, kind)
        names = sorted(n for n in os.listdir(folder) if n.endswith(".torrent"))
        counts[kind] = len(names)
        for n in names:
            torrent = os.path.join(folder, n)
            with open(torrent[: -len(".torrent")] + ".json", encoding="utf-8") as f:
                expected = json.load(f)
            before = report.failed
            check(shoal, report, torrent, expected)
            if kind == "invalid":
                check_invalid_too_for_libtorrent(report, torrent)
            print(("PASS " if report.failed == before else "FAIL ") + f"{kind}/{n}")
    report.expect("corpus is not empty", counts["valid"] >= 20 and counts["invalid"] >= 10 and counts["warn"] >= 2,
                  str(counts))
    print(f"{counts['valid']} valid, {counts['invalid']} invalid and {counts['warn']} warn torrents: "
          f"{report.passed} checks passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
