#!/usr/bin/python3
"""Headline speed on loopback, in one run: shoal -> shoal against libtorrent -> libtorrent,
each with its default settings, and each with encryption forced to RC4.

Pairs (one seeder, one leecher, a file of --size MiB, default 1024, warm page cache):

  shoal default    shoal seed + shoal download, no encryption flag (MSE `preferred`)
  lt default       libtorrent 2.0.8 seed + download with its defaults (pe_enabled, pe_both)
  shoal required   both shoal peers `--encryption required` (RC4 over the whole stream)
  lt required      both libtorrent peers forced to RC4 (out/in_enc_policy forced,
                   allowed_enc_level rc4, prefer_rc4)

The pairs run interleaved, --repeat rounds (default 3); the median MB/s of each pair gives
the ratios shoal default / lt default (goal >= 2) and shoal required / lt required (goal
>= 1). MB/s = 10^6 bytes per second of the leecher's wall time, start-up and final flush
included. Every received file is compared with the source, and what each connection
negotiated is checked: shoal's -v log ("connected (tcp, plaintext)" or ", rc4)"), and
libtorrent's peer flags (rc4_encrypted / plaintext_encrypted).

Usage: speed.py --shoal PATH [--size MiB] [--repeat N] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from swarm import proc_stats, timed  # noqa: E402

PAIRS = [
    ("shoal default", "shoal", []),
    ("lt default", "lt", []),
    ("shoal required", "shoal", ["--encryption", "required"]),
    ("lt required", "lt", ["--encryption", "required"]),
]


def negotiated_shoal(run, log):
    """'plaintext', 'rc4' or '?' from a shoal -v log's "connected (...)" lines."""
    text = open(run.path(log), "rb").read().decode("utf-8", "replace")
    kinds = set()
    for line in text.splitlines():
        if "connected (" in line:
            kinds.add("rc4" if ", rc4" in line else "plaintext" if "plaintext" in line else "?")
    return ",".join(sorted(kinds)) or "none"


def negotiated_lt(run, log):
    kinds = set()
    for line in open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines():
        if not line.startswith("{"):
            continue
        for v in json.loads(line).get("peer_totals", {}).values():
            if v.get("down", 0) or v.get("up", 0):
                kinds.add("rc4" if v.get("rc4") else "plaintext after MSE" if v.get("plaintext_encrypted")
                          else "plaintext")
    return ",".join(sorted(kinds)) or "none"


def one(run, label, kind, enc, torrent, src, size, rnd):
    os.sync()  # earlier runs' dirty pages must not be written back during this one
    tag = label.replace(" ", "-") + f"-{rnd}"
    sport = h.free_port()
    if kind == "shoal":
        sp = run.spawn([run.shoal, "seed", torrent, "-d", src, "--port", str(sport), "--local", "--skip-check", *enc],
                       f"seed-{tag}.log")
    else:
        sp = run.spawn([h.PY, h.LT_PEER, "seed", torrent, src, "--port", str(sport), "--seconds", "900", *enc],
                       f"seed-{tag}.log")
    h.wait_listening(sport)
    time.sleep(0.5)
    dst = run.path(f"dst-{tag}")
    os.makedirs(dst)
    peer = f"127.0.0.1:{sport}"
    if kind == "shoal":
        argv = [run.shoal, "download", torrent, "-d", dst, "--port", str(h.free_port()), "--local", "--seed-time",
                "0", "--peer", peer, "-v", *enc]
    else:
        argv = [h.PY, h.LT_PEER, "download", torrent, dst, "--port", str(h.free_port()), "--peer", peer, "--seconds",
                "900", *enc]
    log = f"leech-{tag}.log"
    rc, wall, cpu, rss = timed(run, argv, log)
    scpu, srss = proc_stats(sp.pid)
    run.stop(sp)
    ok = rc == 0 and h.same_tree(src, dst, ["payload.bin"])
    subprocess.run(["rm", "-rf", dst])
    got = negotiated_shoal(run, log) if kind == "shoal" else negotiated_lt(run, log)
    return {"pair": label, "round": rnd, "ok": ok, "mbps": size / wall / 1e6 if wall else 0.0, "wall": wall,
            "leech_cpu": cpu, "seed_cpu": scpu, "leech_rss": rss, "seed_rss": srss, "negotiated": got}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=1024, help="MiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write every run here")
    args = ap.parse_args()
    run = h.Run(args.shoal, "speed")
    try:
        src = run.path("src")
        h.write_random(os.path.join(src, "payload.bin"), args.size << 20, seed=1)
        t = run.path("t.torrent")
        h.shoal_create(run, os.path.join(src, "payload.bin"), t, "--v1", "--piece-size", "1MiB")
        subprocess.run(["cat", os.path.join(src, "payload.bin")], stdout=subprocess.DEVNULL)  # warm cache
        size = args.size << 20
        print(f"## Default and RC4-forced speed, {args.size} MiB, loopback, {args.repeat} rounds\n")
        print("| pair | round | MB/s | wall s | seeder CPU s | leecher CPU s | negotiated | intact |")
        print("|---|---|---|---|---|---|---|---|")
        results = []
        for rnd in range(1, args.repeat + 1):
            for label, kind, enc in PAIRS:
                r = one(run, label, kind, enc, t, src, size, rnd)
                results.append(r)
                print(f"| {label} | {rnd} | {r['mbps']:.0f} | {r['wall']:.2f} | {r['seed_cpu']:.2f} | "
                      f"{r['leech_cpu']:.2f} | {r['negotiated']} | {'yes' if r['ok'] else 'NO'} |", flush=True)
        med = {label: statistics.median(r["mbps"] for r in results if r["pair"] == label) for label, _, _ in PAIRS}
        print()
        print("| pair | median MB/s |")
        print("|---|---|")
        for label, _, _ in PAIRS:
            print(f"| {label} | {med[label]:.0f} |")
        d = med["shoal default"] / med["lt default"] if med["lt default"] else 0
        e = med["shoal required"] / med["lt required"] if med["lt required"] else 0
        print()
        print(f"- shoal default / libtorrent default: **{d:.2f}x** (goal >= 2: {'met' if d >= 2 else 'NOT met'})")
        print(f"- shoal required / libtorrent RC4-forced: **{e:.2f}x** (goal >= 1: {'met' if e >= 1 else 'NOT met'})")
        bad = [r for r in results if not r["ok"]]
        if bad:
            print(f"- {len(bad)} run(s) did NOT deliver an intact file: " + ", ".join(
                f"{r['pair']} round {r['round']}" for r in bad))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"runs": results, "median": med, "default_ratio": d, "rc4_ratio": e}, f, indent=1)
        run.check("every transfer delivered the file intact", not bad)
        run.check("shoal default negotiated plaintext (after the MSE handshake)",
                  all(r["negotiated"] == "plaintext" for r in results if r["pair"] == "shoal default"))
        run.check("shoal required negotiated rc4",
                  all(r["negotiated"] == "rc4" for r in results if r["pair"] == "shoal required"))
        run.check("libtorrent RC4-forced negotiated rc4",
                  all(r["negotiated"] == "rc4" for r in results if r["pair"] == "lt required"))
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
