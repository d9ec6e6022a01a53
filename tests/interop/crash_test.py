#!/usr/bin/python3
"""kill -9 a downloading shoal at random moments, restart it each time, and check that
it never loses (or fetches again) a piece its resume data says was verified and
flushed, that no piece in the resume data is wrong on disk, and that the final file is
correct.

Usage: crash_test.py --shoal PATH [--kills N] [--size MiB]
"""
import argparse
import hashlib
import json
import os
import random
import signal
import time

import harness as h

PIECE = 256 * 1024


def bdecode(data, i=0):
    """A tiny bencode reader for the resume file (test-side, independent of shoal)."""
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    j = data.index(b":", i)
    n = int(data[i:j])
    return data[j + 1:j + 1 + n], j + 1 + n


def resume_pieces(path, num_pieces):
    if not os.path.exists(path):
        return set()
    d, _ = bdecode(open(path, "rb").read())
    bits = d[b"pieces"]
    return {p for p in range(num_pieces) if bits[p >> 3] & (0x80 >> (p & 7))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--size", type=int, default=160, help="MiB")
    args = ap.parse_args()
    run = h.Run(args.shoal, "crash")
    rng = random.Random(4242)
    try:
        src = run.path("src")
        name = "payload.bin"
        h.write_random(os.path.join(src, name), args.size << 20, seed=9)
        t = run.path("t.torrent")
        info = h.shoal_create(run, os.path.join(src, name), t, "--v1", "--piece-size", "256KiB")
        n = info["piece_count"]
        data = open(os.path.join(src, name), "rb").read()
        good = [hashlib.sha1(data[p * PIECE:(p + 1) * PIECE]).digest() for p in range(n)]
        sport = h.free_port()
        # A capped seeder so that each run makes some progress and is cut mid-way.
        seed = h.shoal_seed(run, t, src, sport, "seed.log", "--max-upload-rate", "8MiB")
        h.wait_listening(sport)
        time.sleep(1)  # let the seeder finish checking its data
        dst = run.path("dst")
        resume = os.path.join(dst, ".shoal", info["info_hash_v1"] + ".resume")
        prev = set()
        kills = 0
        violations = []
        for k in range(args.kills):
            port = h.free_port()
            p = h.shoal_download(run, t, dst, port, f"leech-{k}.log", "--seed-time", "0", "--peer",
                                 f"127.0.0.1:{sport}", background=True)
            time.sleep(rng.uniform(1.0, 3.0))
            if p.poll() is not None:
                break  # finished before we could kill it
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
            lines = [json.loads(l) for l in open(run.path(f"leech-{k}.log"), "rb").read().decode().splitlines()
                     if l.startswith("{")]
            start = next((l for l in lines if l.get("event") == "start"), None)
            if start is None:
                violations.append(f"run {k}: no start line")
            elif start["pieces"] != len(prev):
                violations.append(f"run {k}: started with {start['pieces']} pieces, resume data listed {len(prev)}")
            now = resume_pieces(resume, n)
            if not prev <= now:
                violations.append(f"run {k}: resume data lost pieces {sorted(prev - now)[:5]}")
            # Every piece the resume data trusts must be correct on disk.
            if now - prev and not os.path.exists(os.path.join(dst, name)):
                violations.append(f"run {k}: resume data lists pieces but the file is missing")
                now = prev
            with open(os.path.join(dst, name), "rb") if now - prev else open(os.devnull, "rb") as f:
                for piece in sorted(now - prev):
                    f.seek(piece * PIECE)
                    if hashlib.sha1(f.read(PIECE)).digest() != good[piece]:
                        violations.append(f"run {k}: piece {piece} listed as verified but wrong on disk")
            print(f"kill {kills}: {len(now)}/{n} pieces flushed", flush=True)
            prev = now
        run.check(f"killed with SIGKILL {kills} times mid-download", kills >= 10, f"only {kills}")
        run.check("each restart resumed exactly the flushed pieces; none lost; none wrong on disk", not violations,
                  "; ".join(violations[:5]))
        rc = h.shoal_download(run, t, dst, h.free_port(), "leech-final.log", "--seed-time", "0", "--peer",
                              f"127.0.0.1:{sport}")
        run.check("final run completes", rc == 0, f"exit {rc}")
        lines = [json.loads(l) for l in open(run.path("leech-final.log"), "rb").read().decode().splitlines()
                 if l.startswith("{")]
        start = next((l for l in lines if l.get("event") == "start"), {})
        run.check("final run starts from the resume data", start.get("pieces") == len(prev),
                  f"{start.get('pieces')} vs {len(prev)}")
        summ = h.summary(run, "leech-final.log") or {}
        missing = (n - len(prev)) * PIECE
        run.check("final run downloads only what was not flushed",
                  summ.get("downloaded", 1 << 62) <= missing + 16 * PIECE,
                  f"downloaded {summ.get('downloaded')} for {missing} missing bytes")
        run.check("result is byte-identical", h.same_tree(src, dst, [name]))
        run.stop(seed)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
