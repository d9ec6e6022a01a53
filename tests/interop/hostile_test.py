#!/usr/bin/python3
"""A download with scripted hostile peers in the swarm (corrupt blocks, oversized
messages, out-of-range indices, a bad bitfield, requests while choked, unrequested
data) next to one honest seeder: every hostile peer is dropped, the corrupt one and the
flooder banned, the ones that only broke the protocol closed without a ban and redialled
only after a back-off, and the download completes byte-identical. Then a scripted peer
that sends an empty ut_pex right after the extension handshake (as a widely used client
does) downloads the whole torrent from the shoal seeder, and nobody is banned.

Usage: hostile_test.py --shoal PATH
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import harness as h

MODES = ["corrupt", "oversized", "out_of_range", "bad_bitfield", "choked_requests", "unrequested"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "hostile")
    try:
        src = run.path("src")
        name = "payload.bin"
        h.write_random(os.path.join(src, name), 64 << 20, seed=3)
        t = run.path("t.torrent")
        info = h.shoal_create(run, os.path.join(src, name), t, "--v1", "--piece-size", "256KiB")
        hostile = {}
        for mode in MODES:
            port = h.free_port()
            hostile[mode] = (run.spawn([sys.executable, os.path.join(h.HERE, "hostile_peer.py"), mode, "--port",
                                        str(port), "--info-hash", info["info_hash_v1"], "--pieces",
                                        str(info["piece_count"]), "--piece-length", str(info["piece_size"])],
                                       f"hostile-{mode}.log"), port)
        for _, port in hostile.values():
            h.wait_listening(port)
        # The honest seeder is slow, so the hostile peers get their chance.
        sport = h.free_port()
        seed = h.shoal_seed(run, t, src, sport, "seed.log", "--max-upload-rate", "16MiB", "-v")
        h.wait_listening(sport)
        peers = []
        for _, port in hostile.values():
            peers += ["--peer", f"127.0.0.1:{port}"]
        peers += ["--peer", f"127.0.0.1:{sport}"]
        dst = run.path("dst")
        started = time.time()
        rc = h.shoal_download(run, t, dst, h.free_port(), "leech.log", "--seed-time", "0", "-v", *peers)
        run.check("download completes despite hostile peers", rc == 0, f"exit {rc}")
        run.check("bytes identical", h.same_tree(src, dst, [name]))
        summ = h.summary(run, "leech.log") or {}
        run.check("the corrupt peer was caught (hash failures, a ban)",
                  summ.get("hash_failures", 0) >= 1 and summ.get("banned_peers", 0) >= 1, json.dumps(summ))
        log = open(run.path("leech.log"), "rb").read().decode("utf-8", "replace")
        done_at = started + float(summ.get("seconds", 0))  # when the leech had every piece
        for mode, (p, port) in hostile.items():
            events = [json.loads(l) for l in open(p.log, "rb").read().decode().splitlines() if l.startswith("{")]
            # Only connections that got to the misbehaviour and that shoal hung up while it was
            # still downloading count: the readiness probe and the encrypted attempt end before
            # the misbehaviour, and every connection is closed when the download ends, so
            # neither proves anything.
            dropped = [e for e in events if e.get("event") == "closed" and e.get("misbehaved") and
                       e.get("by") == "remote" and e.get("at", done_at) < done_at]
            run.check(f"{mode}: shoal dropped the connection after the misbehaviour, before it completed",
                      len(dropped) >= 1, f"completed at {done_at:.3f}, events {events}")
        reasons = {
            "oversized": "exceeds the limit",
            "out_of_range": "out of range",
            "bad_bitfield": "does not fit",
            "choked_requests": "requests while choked",
            "unrequested": "never requested",
            "corrupt": "banned",
        }
        # Corrupt data and floods are banned; protocol errors only close the connection.
        banned_modes = {"corrupt", "choked_requests"}
        for mode, words in reasons.items():
            port = hostile[mode][1]
            # The line must name this hostile peer's own port: another peer's reason is not it.
            run.check(f"{mode}: the log names the reason", any(
                words in line and f"127.0.0.1:{port} closed" in line for line in log.splitlines()), words)
        # One connection is the test's own readiness probe; then shoal's dial, which under the
        # default --encryption preferred is an encrypted attempt these plaintext-only peers
        # drop and one plaintext retry. Never another after the ban; after a protocol error
        # only after a back-off (2 s, then doubling), so a few at most.
        for mode, (p, port) in hostile.items():
            connects = sum('"connected"' in l for l in open(p.log, "rb").read().decode().splitlines())
            closes = [l for l in log.splitlines() if f"127.0.0.1:{port} closed" in l]
            if mode in banned_modes:
                run.check(f"{mode}: banned, not connected to again", connects <= 3, f"{connects} connections")
            else:
                run.check(f"{mode}: closed without a ban", closes and not any("banned" in l for l in closes),
                          "; ".join(closes[:3]))
                run.check(f"{mode}: redialled only after a back-off", connects <= 8, f"{connects} connections")

        # A widely used client sends an empty ut_pex right after the extension handshake: a
        # shoal seeder must take it for "nothing new" and serve the whole torrent.
        leech = subprocess.run([h.PY, os.path.join(h.HERE, "scripted_peer.py"), "leech", "--torrent", t, "--port",
                                str(sport), "--empty-pex", "--seconds", "90"], capture_output=True, text=True,
                               timeout=120)
        got = json.loads(leech.stdout.strip().splitlines()[-1]) if leech.stdout.strip() else {}
        want = hashlib.sha256(open(os.path.join(src, name), "rb").read()).hexdigest()
        run.check("empty ut_pex: the peer sent it", got.get("sent_empty_pex") is True, json.dumps(got))
        run.check("empty ut_pex: the peer downloads the whole torrent from a shoal seed, bytes right",
                  got.get("event") == "done" and got.get("sha256") == want and got.get("bad_pieces") == 0,
                  json.dumps(got) + leech.stderr[-500:])
        seed_log = open(seed.log, "rb").read().decode("utf-8", "replace")
        run.check("empty ut_pex: the seeder banned nobody", "banned" not in seed_log,
                  [l for l in seed_log.splitlines() if "banned" in l][:2])
        run.stop(seed)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
