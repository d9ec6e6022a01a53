#!/usr/bin/env python3
"""The tracker benchmark's table in Markdown, from bench/tracker.sh's JSON lines:
medians of the runs, and the shoal/opentracker ratio of each figure.

Usage: summarize_tracker.py RESULTS_DIR PEERS TORRENTS SECONDS RUNS
"""
import json
import os
import statistics
import sys


def load(path):
    if not os.path.exists(path):
        return None
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    out = {"runs": {}}
    for r in rows:
        m = r["mode"]
        if m in ("udp", "http-keepalive", "http-close"):
            out["runs"].setdefault(m, []).append(r)
        else:
            out[m] = r
    return out


def median(rows, key="per_second"):
    vals = [r[key] for r in rows or []]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float) and v < 100:
        return f"{v:.1f}{unit}"
    return f"{v:,.0f}{unit}"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def main():
    results, peers, torrents, seconds, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    s = load(os.path.join(results, "tracker-shoal.jsonl"))
    o = load(os.path.join(results, "tracker-opentracker.jsonl"))
    rows = []

    def add(label, fs, fo, unit=""):
        rows.append((label, fmt(fs, unit), fmt(fo, unit), ratio(fs, fo)))

    modes = [("udp", "UDP"), ("http-keepalive", "HTTP keep-alive"), ("http-close", "HTTP, one connection per announce")]
    for mode, label in modes:
        add(label + ": announces/s", median(s and s["runs"].get(mode)), median(o and o["runs"].get(mode)))

    def cost(x, mode):
        # Tracker CPU per announce, in microseconds: robust to the load generator's own limit.
        rs = [r for r in (x and x["runs"].get(mode)) or [] if r.get("per_second")]
        vals = [r["tracker_cpu"] / r["per_second"] * 1e6 for r in rs if "tracker_cpu" in r]
        return statistics.median(vals) if vals else None

    for mode, label in modes:
        add(label + ": tracker CPU µs per announce (lower is better)", cost(s, mode), cost(o, mode))

    def mem(x):
        if not x or "memory" not in x:
            return None, None, None
        m = x["memory"]
        grown = (m["rss_after_kib"] - m["rss_before_kib"]) * 1024
        return m["rss_after_kib"] / 1024, grown / m["peers"], x.get("udp-fill", {}).get("per_second")

    ms, mo = mem(s), mem(o)
    add(f"RSS with {peers:,} peers (MiB)", ms[0], mo[0])
    add("RSS growth per peer (bytes)", ms[1], mo[1])
    add("fill: first announces (event=started)/s", ms[2], mo[2])
    print(f"{peers:,} distinct peers in {torrents} torrents; medians of {runs} runs of {seconds} s\n")
    print("| | shoal | opentracker | shoal/opentracker |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    for name, x in (("shoal", s), ("opentracker", o)):
        if not x:
            continue
        print(f"\n{name}: every run: announces/s (errors; UDP: lost, HTTP: connections the server closed; "
              "CPU share of the tracker / the load generator):")
        for mode, rs in x["runs"].items():
            parts = []
            for r in rs:
                extra = r.get("lost", r.get("server_closes", 0))
                parts.append(f"{r['per_second']:,.0f} ({r['errors']}; {extra}; {r.get('tracker_cpu', 0):.2f} / "
                             f"{r.get('load_cpu', 0):.2f})")
            print(f"- {mode}: " + "; ".join(parts))
        if "stats" in x:
            print(f"- after the fill: {json.dumps(x['stats'])[:400]}")


if __name__ == "__main__":
    main()
