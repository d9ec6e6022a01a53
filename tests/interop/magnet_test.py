#!/usr/bin/python3
"""Magnet links and metadata exchange (BEP 9) with libtorrent, both ways: v1 and hybrid
links, peers from x.pe or from a tracker (opentracker); every download checked byte for
byte. Also: a link with nobody to ask fails at once with a clear message.

Usage: magnet_test.py --shoal PATH
"""
import argparse
import os
import subprocess
import urllib.parse

import harness as h


def magnet(info, peers=(), trackers=()):
    parts = [f"xt=urn:btih:{info['info_hash_v1']}"]
    if info.get("info_hash_v2"):
        parts.append(f"xt=urn:btmh:1220{info['info_hash_v2']}")
    parts.append("dn=" + urllib.parse.quote(info["name"]))
    parts += ["x.pe=" + p for p in peers]
    parts += ["tr=" + urllib.parse.quote(t, safe="") for t in trackers]
    return "magnet:?" + "&".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "magnet")
    try:
        src = run.path("src", "album")
        for i, size in enumerate([3 << 20, 1, 0, 700001, 5 << 20]):
            h.write_random(os.path.join(src, f"track{i}.bin"), size, seed=i + 20)
        names = [f"album/track{i}.bin" for i in range(5)]
        v1_t, hy_t = run.path("v1.torrent"), run.path("hybrid.torrent")
        v1 = h.shoal_create(run, src, v1_t, "--v1", "--piece-size", "64KiB")
        hy = h.shoal_create(run, src, hy_t, "--hybrid", "--piece-size", "64KiB")
        tracker = h.start_opentracker(run, [v1["info_hash_v1"], hy["info_hash_v1"]])
        announce = f"http://127.0.0.1:{tracker}/announce"
        # The seeders' copies name the tracker (the info-hashes stay the same).
        h.shoal_create(run, src, v1_t, "--v1", "--piece-size", "64KiB", "-t", announce)
        h.shoal_create(run, src, hy_t, "--hybrid", "--piece-size", "64KiB", "-t", announce)

        for label, t, info in [("v1", v1_t, v1), ("hybrid", hy_t, hy)]:
            # libtorrent seeds from the .torrent; shoal has only the magnet link.
            sport = h.free_port()
            seed = h.lt_peer(run, "seed", t, run.path("src"), sport, f"lt-seed-{label}.log")
            h.wait_listening(sport)
            for via in ["x.pe", "tracker"]:
                link = magnet(info, peers=[f"127.0.0.1:{sport}"]) if via == "x.pe" else magnet(info, trackers=[announce])
                dst = run.path(f"shoal-{label}-{via}")
                rc = h.shoal_download(run, link, dst, h.free_port(), f"shoal-{label}-{via}.log", "--seed-time", "0",
                                      "--stop-timeout", "60")
                log = open(run.path(f"shoal-{label}-{via}.log"), "rb").read().decode("utf-8", "replace")
                run.check(f"{label} magnet ({via}): libtorrent -> shoal completes", rc == 0, f"exit {rc}: {log[-400:]}")
                run.check(f"{label} magnet ({via}): bytes identical", h.same_tree(run.path("src"), dst, names))
                cached = os.path.join(dst, ".shoal", info["info_hash_v1"] + ".torrent")
                run.check(f"{label} magnet ({via}): the verified metadata is kept for a restart",
                          os.path.exists(cached))
            run.stop(seed)

            # shoal seeds; libtorrent has only the magnet link and must fetch the metadata from shoal.
            sport = h.free_port()
            seed = h.shoal_seed(run, t, run.path("src"), sport, f"shoal-seed-{label}.log")
            h.wait_listening(sport)
            dst = run.path(f"lt-{label}")
            lp = h.lt_peer(run, "download", magnet(info), dst, h.free_port(), f"lt-leech-{label}.log",
                           peers=[f"127.0.0.1:{sport}"])
            rc, _ = h.lt_result(lp)
            run.check(f"{label} magnet: shoal -> libtorrent (metadata from shoal) completes", rc == 0, f"exit {rc}")
            run.check(f"{label} magnet: shoal -> libtorrent bytes identical", h.same_tree(run.path("src"), dst, names))
            run.stop(seed)

        # A v2-only link: the metadata arrives and verifies (SHA-256); the piece layers are not in
        # it and come from the peer by BEP 52 hash requests (more of this in v2_test.py).
        v2_t = run.path("v2.torrent")
        v2 = h.shoal_create(run, src, v2_t, "--v2", "--piece-size", "64KiB")
        sport = h.free_port()
        seed = h.lt_peer(run, "seed", v2_t, run.path("src"), sport, "lt-seed-v2.log")
        h.wait_listening(sport)
        link = f"magnet:?xt=urn:btmh:1220{v2['info_hash_v2']}&x.pe=127.0.0.1:{sport}"
        r = subprocess.run([run.shoal, "download", link, "-d", run.path("v2"), "--local", "--seed-time", "0", "-v"],
                           capture_output=True, text=True, timeout=120)
        run.check("v2-only magnet: metadata, then piece layers from libtorrent, download completes",
                  r.returncode == 0 and "piece layer of" in r.stderr, f"exit {r.returncode}: {r.stderr[-300:]}")
        run.check("v2-only magnet: bytes identical", h.same_tree(run.path("src"), run.path("v2"), names))
        run.stop(seed)

        r = subprocess.run([run.shoal, "download", magnet(v1), "-d", run.path("nobody"), "--local"],
                           capture_output=True, text=True, timeout=30)
        run.check("a magnet with nobody to ask: exit 1, says so", r.returncode == 1 and "nobody to ask" in r.stderr,
                  f"exit {r.returncode}: {r.stderr[-300:]}")
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
