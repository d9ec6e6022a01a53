#!/usr/bin/python3
"""libtorrent's decoder on the same .torrent files, for a side-by-side figure.

Through the Python binding (python3-libtorrent), so it is NOT like-for-like with the
C++ benchmark: every call pays the Python call overhead, and lt.bdecode() also builds a
Python dict/list/bytes tree of the whole document (copying every string, including the
pieces string). lt.torrent_info(bytes) returns an opaque object, so it is closer to
shoal's parse_metainfo (decode, checks, file list, info-hash), plus the call overhead.

Usage: lt_decode.py [--json OUT] LABEL=PATH [LABEL=PATH...]
Prints the best of 7 rounds of ns per call for each (function, file).
"""
import json
import sys
import time

import libtorrent as lt

ROUNDS = 7
ROUND_SECONDS = 0.2


def best_ns_per_call(fn, arg):
    # Size one round to about ROUND_SECONDS, then take the fastest round.
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(arg)
        dt = time.perf_counter() - t0
        if dt > ROUND_SECONDS / 4:
            break
        n *= 2
    n = max(1, int(n * ROUND_SECONDS / dt))
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn(arg)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def nothing(_):
    return None


def main():
    args = sys.argv[1:]
    out = None
    if len(args) >= 2 and args[0] == "--json":
        out, args = args[1], args[2:]
    if not args:
        sys.exit(__doc__)
    results = {"libtorrent": lt.__version__, "python": sys.version.split()[0], "rows": []}
    overhead = best_ns_per_call(nothing, b"")
    results["python_call_overhead_ns"] = overhead
    print(f"libtorrent {lt.__version__} via Python {results['python']}; "
          f"an empty Python function call costs {overhead:.0f} ns here")
    for spec in args:
        label, _, path = spec.partition("=")
        with open(path, "rb") as f:
            data = f.read()
        if lt.bdecode(data) is None:
            sys.exit(f"{path}: libtorrent cannot decode it")
        for name, fn in (("lt.bdecode", lt.bdecode), ("lt.torrent_info", lt.torrent_info)):
            ns = best_ns_per_call(fn, data)
            results["rows"].append({"function": name, "label": label, "bytes": len(data), "ns_per_call": ns})
            print(f"{name + '/' + label:28s} {ns:14.0f} ns/call  {len(data) / ns:8.2f} GB/s  ({len(data)} bytes)")
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
