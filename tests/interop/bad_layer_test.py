#!/usr/bin/python3
"""A v2 torrent whose piece layer does not hash to its file's root (the layers sit outside
the info dictionary, so the info-hash is unchanged): shoal loads it with a warning, drops
that layer, fetches it from a libtorrent seeder (BEP 52 hash requests), checks it against
the root and completes the download byte for byte. libtorrent 2.0.8 loads the same file.

Usage: bad_layer_test.py --shoal PATH
"""
import argparse
import json
import os
import subprocess

import bencoding
import harness as h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "badlayer")
    try:
        src = run.path("src", "set")
        sizes = [3 << 20, (1 << 20) + 777]
        for i, size in enumerate(sizes):
            h.write_random(os.path.join(src, f"f{i}.bin"), size, seed=i + 90)
        names = [f"set/f{i}.bin" for i in range(len(sizes))]
        good = run.path("good.torrent")
        h.shoal_create(run, src, good, "--v2", "--piece-size", "64KiB")
        with open(good, "rb") as f:
            t = bencoding.decode(f.read())
        layers = t[b"piece layers"]
        run.check("the torrent has two piece layers", len(layers) == 2, str(len(layers)))
        root = sorted(layers)[0]
        layer = bytearray(layers[root])
        layer[33] ^= 0x40  # one bit of the second piece hash
        layers[root] = bytes(layer)
        bad = run.path("bad.torrent")
        with open(bad, "wb") as f:
            f.write(bencoding.encode(t))

        info = subprocess.run([run.shoal, "info", "--json", bad], capture_output=True, text=True)
        run.check("shoal info loads it", info.returncode == 0, info.stderr)
        if info.returncode == 0:
            warnings = json.loads(info.stdout)["warnings"]
            run.check("... with a warning that the layer was dropped",
                      any("does not hash to the file's pieces root: dropped" in w for w in warnings), str(warnings))
        lt_ok = subprocess.run([h.PY, "-c", f"import libtorrent as lt; lt.torrent_info({bad!r})"],
                               capture_output=True, text=True)
        run.check("libtorrent loads it too", lt_ok.returncode == 0, lt_ok.stderr[-300:])

        lport = h.free_port()
        seed = h.lt_peer(run, "seed", good, run.path("src"), lport, "lt-seed.log", seconds=300)
        h.wait_listening(lport)
        dst = run.path("dst")
        rc = h.shoal_download(run, bad, dst, h.free_port(), "shoal.log", "--peer", f"127.0.0.1:{lport}",
                              "--seed-time", "0", "--no-dht", "-v", timeout=240)
        log = open(run.path("shoal.log"), "rb").read().decode("utf-8", "replace")
        run.check("shoal completes from libtorrent", rc == 0, f"exit {rc}: {log[-800:]}")
        run.check("bytes identical", h.same_tree(run.path("src"), dst, names))
        run.check("shoal fetched one piece layer from the peer and verified it",
                  "fetching the piece layers of 1 file(s)" in log and "piece layer of '" in log and "verified" in log,
                  log[-800:])
        run.stop(seed)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
