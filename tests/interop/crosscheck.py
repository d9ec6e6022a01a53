#!/usr/bin/python3
"""Cross-check shoal's torrent creation and parsing against other implementations.

1. Torrents made by mktorrent, transmission-create and libtorrent are read with
   `shoal info`; info-hashes, sizes, piece layout, files and trackers must match
   what libtorrent reads from the same file.
2. Torrents made by `shoal create` (v1, v2, hybrid; single and multi-file; two
   piece sizes) are loaded by libtorrent: the info-hashes must match what shoal
   printed, and a libtorrent session must verify every piece against the data.

Run with the system interpreter, which has the libtorrent bindings:
    /usr/bin/python3 tests/interop/crosscheck.py --shoal build/shoal
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import libtorrent as lt

TRACKER = "http://127.0.0.1:1/announce"
BACKUP_TRACKER = "http://127.0.0.1:2/announce"
KIB = 1024
SMALL_PIECE = 16 * KIB
LARGE_PIECE = 64 * KIB
CHECK_TIMEOUT_S = 60
TOOL_TIMEOUT_S = 120

# Files of the multi-file data set, relative to its root folder, with their sizes.
TREE_FILES = {
    "empty.txt": 0,
    "one.bin": 1,
    "small_piece_plus_1.bin": SMALL_PIECE + 1,
    "three_small_pieces_minus_1.bin": 3 * SMALL_PIECE - 1,
    "large_piece_plus_1.bin": LARGE_PIECE + 1,
    "three_large_pieces_minus_1.bin": 3 * LARGE_PIECE - 1,
    "big.bin": 5 * LARGE_PIECE + 777,
    "sub/empty": 0,
    "sub/nested/deep.bin": 12345,
    "sub/nested/with space.dat": 4097,
    "zzz_last_empty": 0,
}


class Report:
    """Counts checks and prints one line per check."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, label, expected, actual):
        if expected == actual:
            self.passed += 1
            print(f"PASS {label}")
        else:
            self.fail(label, f"expected: {expected!r}\nactual:   {actual!r}")

    def expect(self, label, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"PASS {label}")
        else:
            self.fail(label, detail)

    def fail(self, label, detail):
        self.failed += 1
        print(f"FAIL {label}")
        for line in detail.splitlines():
            print(f"      {line}")

    def summary(self):
        return f"{self.passed} passed, {self.failed} failed"


def run(cmd):
    """Runs a command and returns its stdout; raises with its stderr on failure."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr.strip()}")
    return proc.stdout


# ---------------------------------------------------------------- data sets

def write_random_file(path, size, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))


def build_data(data_dir):
    """Creates the data sets; returns a map from set name to its path."""
    rng = random.Random(20240611)
    sets = {
        "odd.bin": os.path.join(data_dir, "odd.bin"),
        "tiny.bin": os.path.join(data_dir, "tiny.bin"),
        "tree": os.path.join(data_dir, "tree"),
    }
    write_random_file(sets["odd.bin"], 1_000_003, rng)
    write_random_file(sets["tiny.bin"], 1, rng)
    for rel, size in TREE_FILES.items():
        write_random_file(os.path.join(sets["tree"], rel), size, rng)
    return sets


# ------------------------------------------------------- torrent makers

def make_with_mktorrent(src, out, piece_size):
    exponent = piece_size.bit_length() - 1
    run(["mktorrent", "-l", str(exponent), "-a", f"{TRACKER},{BACKUP_TRACKER}",
         "-o", out, src])


def make_with_transmission(src, out, piece_size):
    run(["transmission-create", "-o", out, "-t", TRACKER,
         "-s", str(piece_size // KIB), src])


def libtorrent_maker(flags):
    def make(src, out, piece_size):
        fs = lt.file_storage()
        lt.add_files(fs, src)
        ct = lt.create_torrent(fs, piece_size, flags)
        ct.add_tracker(TRACKER, 0)
        ct.add_tracker(BACKUP_TRACKER, 1)
        lt.set_piece_hashes(ct, os.path.dirname(src))
        with open(out, "wb") as f:
            f.write(lt.bencode(ct.generate()))
    return make


def make_with_shoal(shoal, src, out, piece_size, version):
    """Runs `shoal create --json` and returns the printed summary."""
    stdout = run([shoal, "create", src, f"--{version}", "--piece-size", str(piece_size),
                  "-t", TRACKER, "-o", out, "--no-date", "-f", "--json"])
    return json.loads(stdout)


# ------------------------------------------------------- torrent readers

def version_of(has_v1, has_v2):
    if has_v1 and has_v2:
        return "hybrid"
    return "v2" if has_v2 else "v1"


def libtorrent_view(path):
    """What libtorrent reads from a .torrent, in the shape of `shoal info --json`.

    Pad files are left out, and the total size is the sum of the real files
    (libtorrent's own total_size() counts padding too).
    """
    ti = lt.torrent_info(path)
    hashes = ti.info_hashes()
    fs = ti.files()
    files = [(fs.file_path(i), fs.file_size(i)) for i in range(fs.num_files())
             if not fs.file_flags(i) & lt.file_storage.flag_pad_file]
    return {
        "name": ti.name(),
        "info_hash_v1": str(hashes.v1) if hashes.has_v1() else None,
        "info_hash_v2": str(hashes.v2) if hashes.has_v2() else None,
        "version": version_of(hashes.has_v1(), hashes.has_v2()),
        "total_size": sum(size for _, size in files),
        "piece_size": ti.piece_length(),
        "piece_count": ti.num_pieces(),
        "files": files,
        "trackers": tracker_tiers(path),
    }


def tracker_tiers(path):
    """Tracker tiers in file order (BEP 12: announce-list wins over announce).

    Read from the raw file, since libtorrent shuffles the URLs within a tier.
    """
    with open(path, "rb") as f:
        meta = lt.bdecode(f.read())
    if b"announce-list" in meta:
        return [[url.decode() for url in tier] for tier in meta[b"announce-list"]]
    if b"announce" in meta:
        return [[meta[b"announce"].decode()]]
    return []


def shoal_view(shoal, path):
    """What `shoal info --json` reads from a .torrent (same keys as libtorrent_view)."""
    info = json.loads(run([shoal, "info", path, "--json"]))
    view = {key: info[key] for key in
            ("name", "info_hash_v1", "info_hash_v2", "version", "total_size",
             "piece_size", "piece_count", "trackers")}
    view["files"] = [(f["path"], f["size"]) for f in info["files"]]
    view["magnet"] = info["magnet"]
    return view


def shoal_text_hashes(shoal, path):
    """Info-hash lines of `shoal info` text output, as {"v1": hex, "v2": hex}."""
    text = run([shoal, "info", path])
    return {m.group(1): m.group(2)
            for m in re.finditer(r"^Info-hash (v[12]):\s+(\S+)\s*$", text, re.MULTILINE)}


def magnet_hashes(uri):
    hashes = lt.parse_magnet_uri(uri).info_hashes
    return (str(hashes.v1) if hashes.has_v1() else None,
            str(hashes.v2) if hashes.has_v2() else None)


# ------------------------------------------------------------- checks

def compare_info(report, label, shoal, torrent):
    """`shoal info` (JSON and text) must agree with libtorrent on one torrent."""
    expected = libtorrent_view(torrent)
    actual = shoal_view(shoal, torrent)
    for key in expected:
        report.check(f"{label}: info {key}", expected[key], actual[key])
    report.check(f"{label}: info magnet info-hashes",
                 (expected["info_hash_v1"], expected["info_hash_v2"]),
                 magnet_hashes(actual["magnet"]))
    text_expected = {v: expected[f"info_hash_{v}"] for v in ("v1", "v2")
                     if expected[f"info_hash_{v}"] is not None}
    report.check(f"{label}: info text Info-hash lines",
                 text_expected, shoal_text_hashes(shoal, torrent))
    return expected


class Verifier:
    """A quiet local libtorrent session that checks data against a torrent."""

    def __init__(self):
        category = lt.alert.category_t
        self.session = lt.session({
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "listen_interfaces": "127.0.0.1:0",
            "alert_mask": (category.status_notification | category.error_notification
                           | category.storage_notification),
        })

    def verify(self, torrent, save_path):
        """Returns None if libtorrent verified every piece, else a description."""
        ti = lt.torrent_info(torrent)
        params = lt.add_torrent_params()
        params.ti = ti
        params.save_path = save_path
        params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        handle = self.session.add_torrent(params)
        try:
            error = self._wait_until_checked(handle)
            if error:
                return error
            status = handle.status()
            if status.errc.value() != 0:
                return f"torrent error: {status.errc.message()}"
            failed = [i for i in range(ti.num_pieces()) if not handle.have_piece(i)]
            complete = status.state in (lt.torrent_status.seeding, lt.torrent_status.finished)
            if failed or not complete or status.num_pieces != ti.num_pieces():
                return (f"state {status.state}, {status.num_pieces} of {ti.num_pieces()} "
                        f"pieces verified; failed pieces: {failed[:20]}")
            return None
        finally:
            self.session.remove_torrent(handle)

    def _wait_until_checked(self, handle):
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        while time.monotonic() < deadline:
            self.session.wait_for_alert(200)
            for alert in self.session.pop_alerts():
                if not hasattr(alert, "handle") or alert.handle != handle:
                    continue
                if isinstance(alert, lt.torrent_checked_alert):
                    return None
                if isinstance(alert, (lt.torrent_error_alert, lt.file_error_alert)):
                    return alert.message()
        return f"timed out after {CHECK_TIMEOUT_S} s waiting for libtorrent's file check"


def check_foreign_torrents(report, shoal, sets, out_dir):
    """Torrents made by other tools, read by `shoal info`."""
    # Each tool with the smallest piece size it accepts.
    makers = {
        "mktorrent": (make_with_mktorrent, 2 * SMALL_PIECE),
        "transmission-create": (make_with_transmission, SMALL_PIECE),
        "libtorrent-v1": (libtorrent_maker(lt.create_torrent.v1_only), SMALL_PIECE),
        "libtorrent-v2": (libtorrent_maker(lt.create_torrent.v2_only), SMALL_PIECE),
        "libtorrent-hybrid": (libtorrent_maker(0), SMALL_PIECE),
    }
    cases = [("odd.bin", 2 * SMALL_PIECE), ("tiny.bin", SMALL_PIECE),
             ("tree", SMALL_PIECE), ("tree", LARGE_PIECE)]
    for tool, (make, min_piece_size) in makers.items():
        for set_name, wanted_piece_size in cases:
            piece_size = max(wanted_piece_size, min_piece_size)
            label = f"[{tool} {set_name} {piece_size // KIB}KiB]"
            torrent = os.path.join(out_dir, f"{tool}-{set_name}-{piece_size}.torrent")
            try:
                make(sets[set_name], torrent, piece_size)
                compare_info(report, label, shoal, torrent)
            except Exception as exc:  # one broken case must not stop the others
                report.fail(f"{label}: could not run", str(exc))


def check_shoal_torrents(report, shoal, sets, out_dir, verifier):
    """Torrents made by `shoal create`, loaded and verified by libtorrent."""
    cases = [("odd.bin", SMALL_PIECE), ("odd.bin", LARGE_PIECE),
             ("tree", SMALL_PIECE), ("tree", LARGE_PIECE), ("tiny.bin", SMALL_PIECE)]
    for version in ("v1", "v2", "hybrid"):
        for set_name, piece_size in cases:
            label = f"[shoal-{version} {set_name} {piece_size // KIB}KiB]"
            torrent = os.path.join(out_dir, f"shoal-{version}-{set_name}-{piece_size}.torrent")
            try:
                created = make_with_shoal(shoal, sets[set_name], torrent, piece_size, version)
                expected = compare_info(report, label, shoal, torrent)
                for key in ("name", "info_hash_v1", "info_hash_v2", "version",
                            "total_size", "piece_size", "piece_count"):
                    report.check(f"{label}: create --json {key}", expected[key], created[key])
                problem = verifier.verify(torrent, os.path.dirname(sets[set_name]))
                report.expect(f"{label}: libtorrent verifies every piece",
                              problem is None, problem or "")
            except Exception as exc:  # one broken case must not stop the others
                report.fail(f"{label}: could not run", str(exc))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoal", required=True, help="path to the shoal binary")
    args = parser.parse_args()
    shoal = os.path.abspath(args.shoal)
    if not os.access(shoal, os.X_OK):
        print(f"shoal binary not found or not executable: {shoal}")
        return 1

    started = time.monotonic()
    report = Report()
    work_dir = tempfile.mkdtemp(prefix="shoal-crosscheck-")
    try:
        data_dir = os.path.join(work_dir, "data")
        out_dir = os.path.join(work_dir, "torrents")
        os.makedirs(out_dir)
        sets = build_data(data_dir)
        check_foreign_torrents(report, shoal, sets, out_dir)
        check_shoal_torrents(report, shoal, sets, out_dir, Verifier())
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    print(f"took {time.monotonic() - started:.1f} s")
    print(report.summary())
    return 0 if report.failed == 0 and report.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
