#!/usr/bin/python3
"""Turns the decode benchmark's JSON (and, if present, lt_decode.py's JSON) into the
Markdown table used in docs/BENCHMARKS.md.

Usage: summarize_decode.py BENCH_JSON [LT_JSON]
"""
import json
import sys

PUBLISHED_LT_NS = 887  # libtorrent's new bdecode(), "a normal .torrent file" (blog.libtorrent.org, 2015-03)


def median_rows(path):
    data = json.load(open(path))
    rows = {}
    for b in data["benchmarks"]:
        # With repetitions, keep the median aggregate; without, the single run.
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        if name in rows and b.get("run_type") != "aggregate":
            continue
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        rows[name] = {"ns": b["real_time"] * scale, "cpu_ns": b["cpu_time"] * scale,
                      "bytes": b.get("bytes"), "bps": b.get("bytes_per_second")}
    return rows


def fmt_ns(ns):
    return f"{ns:,.0f}"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = median_rows(sys.argv[1])
    lt = {}
    lt_version = None
    if len(sys.argv) > 2:
        try:
            d = json.load(open(sys.argv[2]))
            lt_version = d["libtorrent"]
            for r in d["rows"]:
                lt[(r["function"], r["label"])] = r["ns_per_call"]
        except (OSError, ValueError, KeyError):
            pass
    labels = list(dict.fromkeys(n.split("/", 1)[1] for n in rows))
    via = f"libtorrent {lt_version} via Python" if lt_version else "libtorrent via Python"
    print("| what | input | bytes | shoal (ns) | shoal GB/s | reference | reference (ns) | shoal / reference |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, lt_fn, lt_note in (
        ("bencode_decode", "lt.bdecode", "also builds a Python dict tree"),
        ("parse_metainfo", "lt.torrent_info", "bytes in, torrent_info out"),
    ):
        for label in labels:
            r = rows.get(f"{kind}/{label}")
            if not r:
                continue
            size = int(r["bytes"]) if r["bytes"] else 0
            head = f"| {kind.replace('_', ' ')} | {label} | {size:,} | {fmt_ns(r['ns'])} | {size / r['ns']:.2f} "
            # The published figure is for a typical torrent: compare it with the first (small) input only.
            if kind == "bencode_decode" and label == labels[0]:
                print(head + f"| libtorrent bdecode(), published 2015 figure for \"a normal .torrent\" "
                      f"(not measured here) | {PUBLISHED_LT_NS} | {r['ns'] / PUBLISHED_LT_NS:.2f} |")
            ref = lt.get((lt_fn, label))
            if ref:
                print(head + f"| {lt_fn}() ({via}; {lt_note}) | {fmt_ns(ref)} | {r['ns'] / ref:.2f} |")

if __name__ == "__main__":
    main()
