#!/usr/bin/python3
"""Interop downloads between shoal and libtorrent, through opentracker and with --peer,
each checked byte for byte: both directions, a mixed swarm, and a multi-file torrent
with selected files.

Usage: transfer_test.py --shoal PATH [--size MiB]
"""
import argparse
import json
import os
import subprocess
import time

import harness as h


def one_way(run, torrent, src_dir, name, seeder, leecher, via_tracker):
    """seeder/leecher: 'shoal' or 'lt'. Returns True if the bytes arrived intact."""
    label = f"{seeder} -> {leecher} ({'opentracker' if via_tracker else '--peer'})"
    dst = run.path(f"dst-{seeder}-{leecher}-{via_tracker}")
    os.makedirs(dst)
    sport, lport = h.free_port(), h.free_port()
    peers = [] if via_tracker else [f"127.0.0.1:{sport}"]
    if seeder == "shoal":
        sp = h.shoal_seed(run, torrent, src_dir, sport, f"seed-{label}.log".replace(" ", "_").replace("/", ""))
    else:
        sp = h.lt_peer(run, "seed", torrent, src_dir, sport, f"ltseed-{label}.log".replace(" ", "_").replace("/", ""))
    h.wait_listening(sport)
    if leecher == "shoal":
        args = []
        for p in peers:
            args += ["--peer", p]
        log = f"leech-{label}.log".replace(" ", "_").replace("/", "")
        rc = h.shoal_download(run, torrent, dst, lport, log, "--seed-time", "0", *args)
        ok = run.check(f"{label}: shoal exits 0", rc == 0, f"exit {rc}")
    else:
        lp = h.lt_peer(run, "download", torrent, dst, lport, f"ltleech-{label}.log".replace(" ", "_").replace("/", ""),
                       peers=peers)
        rc, lines = h.lt_result(lp)
        ok = run.check(f"{label}: libtorrent completes", rc == 0, f"exit {rc}")
    same = h.same_tree(src_dir, dst, [name])
    run.check(f"{label}: bytes identical", same)
    run.stop(sp)
    return ok and same


def swarm(run, torrent, src_dir, name, tracker):
    """1 libtorrent seeder (upload capped so leechers must trade) + 3 shoal and 3 libtorrent leechers.
    With libtorrent seeding, every shoal peer a libtorrent leecher sees is a shoal leecher."""
    sport = h.free_port()
    seed = h.lt_peer(run, "seed", torrent, src_dir, sport, "swarm-seed.log", max_upload=6 << 20)
    h.wait_listening(sport)
    time.sleep(1)
    shoal_leechers, lt_leechers = [], []
    for i in range(3):
        d = run.path(f"swarm-shoal-{i}")
        os.makedirs(d)
        port = h.free_port()
        p = h.shoal_download(run, torrent, d, port, f"swarm-shoal-{i}.log", "--seed-time", "20", background=True)
        shoal_leechers.append((p, d, port, f"swarm-shoal-{i}.log"))
    # The libtorrent leechers come a little later, when the shoal leechers have pieces to offer.
    time.sleep(3)
    for i in range(3):
        d = run.path(f"swarm-lt-{i}")
        os.makedirs(d)
        port = h.free_port()
        p = h.lt_peer(run, "download", torrent, d, port, f"swarm-lt-{i}.log", linger=20)
        lt_leechers.append((p, d, port))
    shoal_ports = {port for _, _, port, _ in shoal_leechers}
    for i, (p, d, port, log) in enumerate(shoal_leechers):
        try:
            rc = p.wait(240)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        run.check(f"swarm: shoal leecher {i} completes", rc == 0, f"exit {rc}")
        run.check(f"swarm: shoal leecher {i} bytes identical", h.same_tree(src_dir, d, [name]))
        s = h.summary(run, log) or {}
        run.check(f"swarm: shoal leecher {i} uploaded to others", s.get("uploaded", 0) > 0, json.dumps(s))
    from_shoal_leechers = 0
    totals_seen = []
    for i, (p, d, port) in enumerate(lt_leechers):
        rc, lines = h.lt_result(p, timeout=240)
        run.check(f"swarm: libtorrent leecher {i} completes", rc == 0, f"exit {rc}")
        run.check(f"swarm: libtorrent leecher {i} bytes identical", h.same_tree(src_dir, d, [name]))
        for line in lines:
            if "peer_totals" in line:
                totals_seen.append(line["peer_totals"])
            for ep, t in line.get("peer_totals", {}).items():
                # Incoming connections show an ephemeral port; match shoal leechers by client name and
                # by listen port when the connection was outgoing.
                if t["client"].startswith("shoal") or t.get("peer_id", "").startswith("-SH"):
                    from_shoal_leechers += t["down"]
    run.check("swarm: libtorrent leechers received data from shoal leechers", from_shoal_leechers > 0,
              f"{from_shoal_leechers} bytes; " + json.dumps(totals_seen)[:1500])
    run.stop(seed)


def multi_file(run, tracker_port):
    """Files of 0 and 1 bytes and sizes straddling pieces; download only some of them."""
    src = run.path("multi-src", "album")
    piece = 64 * 1024
    sizes = {"a-empty": 0, "b-one": 1, "c-straddle": piece + 1, "d-skip-big": 5 * piece + 7,
             "e-almost": 3 * piece - 1, "f-skip": 2 * piece + 3, "sub/g-last": 100000}
    for n, s in sizes.items():
        h.write_random(os.path.join(src, n), s, seed=len(n) + s)
    t = run.path("multi.torrent")
    info = h.shoal_create(run, src, t, "--v1", "--piece-size", "64KiB", "-t",
                          f"http://127.0.0.1:{tracker_port}/announce")
    return t, src, info


def sizes_of(root):
    """Relative paths of every file under root."""
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.relpath(os.path.join(d, f), root)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=64, help="MiB of test data")
    args = ap.parse_args()
    run = h.Run(args.shoal, "transfer")
    try:
        name = "payload.bin"
        src = run.path("src")
        h.write_random(os.path.join(src, name), args.size << 20)
        plain = run.path("plain.torrent")
        info = h.shoal_create(run, os.path.join(src, name), plain, "--v1")
        ih = info["info_hash_v1"]
        mt_src = None
        tracker = h.start_opentracker(run, [ih])
        # The same data with tracker URLs (HTTP and UDP); the info-hash is unchanged.
        http_t = run.path("http.torrent")
        udp_t = run.path("udp.torrent")
        h.shoal_create(run, os.path.join(src, name), http_t, "--v1", "-t", f"http://127.0.0.1:{tracker}/announce")
        h.shoal_create(run, os.path.join(src, name), udp_t, "--v1", "-t", f"udp://127.0.0.1:{tracker}")

        one_way(run, http_t, src, name, "lt", "shoal", True)
        one_way(run, plain, src, name, "lt", "shoal", False)
        one_way(run, udp_t, src, name, "shoal", "lt", True)
        one_way(run, plain, src, name, "shoal", "lt", False)
        one_way(run, plain, src, name, "shoal", "shoal", False)

        swarm(run, http_t, src, name, tracker)

        # Multi-file with selection: needs its own whitelist entry, so a second tracker.
        mt, mt_src, minfo = multi_file(run, 0)
        tracker2 = h.start_opentracker(run, [minfo["info_hash_v1"]])
        mt, mt_src, minfo = multi_file(run, tracker2)
        sport = h.free_port()
        seed = h.lt_peer(run, "seed", mt, os.path.dirname(mt_src), sport, "multi-seed.log")
        h.wait_listening(sport)
        dst = run.path("multi-dst")
        # Files in `shoal info` order: a-empty b-one c-straddle d-skip-big e-almost f-skip sub/g-last.
        rc = h.shoal_download(run, mt, dst, h.free_port(), "multi-leech.log", "--seed-time", "0",
                              "--select-file", "1-3,5,7")
        run.check("multi-file selected download exits 0", rc == 0, f"exit {rc}")
        wanted = ["a-empty", "b-one", "c-straddle", "e-almost", "sub/g-last"]
        run.check("selected files identical (0 B, 1 B, straddling, last)",
                  h.same_tree(mt_src, os.path.join(dst, "album"), wanted))
        # Unselected files may hold the edges of shared pieces, never their whole data.
        skipped = os.path.join(dst, "album", "d-skip-big")
        data = open(skipped, "rb").read() if os.path.exists(skipped) else b""
        run.check("an unselected file is not downloaded whole",
                  not h.same_tree(mt_src, os.path.join(dst, "album"), ["d-skip-big"]), f"{len(data)} bytes")
        run.stop(seed)

        # A hybrid torrent (pad files between the files): libtorrent seeds, shoal downloads, and back.
        ht = run.path("hybrid.torrent")
        h.shoal_create(run, mt_src, ht, "--hybrid", "--piece-size", "64KiB")
        sport = h.free_port()
        seed = h.lt_peer(run, "seed", ht, os.path.dirname(mt_src), sport, "hybrid-seed.log")
        h.wait_listening(sport)
        hdst = run.path("hybrid-dst")
        rc = h.shoal_download(run, ht, hdst, h.free_port(), "hybrid-leech.log", "--seed-time", "0", "--peer",
                              f"127.0.0.1:{sport}")
        run.check("hybrid torrent with pad files: libtorrent -> shoal", rc == 0 and h.same_tree(
            mt_src, os.path.join(hdst, "album"), list(sizes_of(mt_src))), f"exit {rc}")
        run.stop(seed)
        sport = h.free_port()
        seed = h.shoal_seed(run, ht, hdst, sport, "hybrid-shoal-seed.log")
        h.wait_listening(sport)
        ldst = run.path("hybrid-lt-dst")
        lp = h.lt_peer(run, "download", ht, ldst, h.free_port(), "hybrid-lt-leech.log", peers=[f"127.0.0.1:{sport}"])
        rc, _ = h.lt_result(lp)
        run.check("hybrid torrent with pad files: shoal -> libtorrent", rc == 0 and h.same_tree(
            mt_src, os.path.join(ldst, "album"), list(sizes_of(mt_src))), f"exit {rc}")
        run.stop(seed)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
