#!/usr/bin/python3
"""`shoal scrape` against `shoal tracker` (HTTP and UDP) and opentracker (HTTP), on loopback.

A shoal seeder announces a torrent to the shoal tracker; once its announce is in (polled,
never a fixed sleep), `shoal scrape` on a torrent of the same data listing the shoal
tracker over HTTP and UDP plus a dead tracker (a closed port) shows one seeder for each
live tracker and an error line for the dead one, exit 0; --json lines parse and carry the
numbers; a magnet link works the same, and a v2-only torrent (asked for by its truncated
hash); opentracker, told of the torrent by a second seeder, answers the HTTP scrape; a
torrent whose only tracker is dead exits 1; argument errors exit 2.

Usage: scrape_test.py --shoal PATH
"""
import argparse
import json
import re
import shutil
import subprocess
import urllib.parse

import harness as h
from tracker_test import start_tracker


def scrape(run, target, *extra, timeout=60):
    r = subprocess.run([run.shoal, "scrape", target, "--local", *extra], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def json_rows(out):
    """The --json lines by tracker URL; None if any line is not JSON."""
    try:
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    except ValueError:
        return None
    return {r.get("tracker"): r for r in rows}


def table_row(out, url):
    """The table's columns after the tracker URL on its line, or None."""
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[1] == url:
            return cols[2:]
    return None


def seeders_of(run, target, url):
    code, out, _ = scrape(run, target, "--json", "--timeout", "5")
    row = (json_rows(out) or {}).get(url) if code == 0 else None
    return row.get("seeders") if row else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "scrape")
    src = run.path("data", "payload.bin")
    h.write_random(src, 3 << 20, seed=7)
    _, tport, _ = start_tracker(run, "tracker.log")
    http_url = f"http://127.0.0.1:{tport}/announce"
    udp_url = f"udp://127.0.0.1:{tport}/announce"
    dead_url = f"http://127.0.0.1:{h.free_port()}/announce"  # nothing listens there

    # The info-hash does not depend on the trackers: make one torrent to learn it.
    info = h.shoal_create(run, src, run.path("plain.torrent"))
    ih = info["info_hash_v1"]
    oport = h.start_opentracker(run, [ih])
    ot_url = f"http://127.0.0.1:{oport}/announce"

    h.shoal_create(run, src, run.path("seed.torrent"), "-a", http_url)
    # What is scraped: HTTP and UDP of the shoal tracker, and a dead one.
    made = h.shoal_create(run, src, run.path("scrape.torrent"), "-a", http_url, "-a", udp_url, "-a", dead_url)
    run.check("the scraped torrent has the seeder's info-hash", made["info_hash_v1"] == ih, made["info_hash_v1"])

    seeder = h.shoal_seed(run, run.path("seed.torrent"), run.path("data"), h.free_port(), "seed.log", "--no-dht",
                          "--no-lsd")
    announced = h.wait_for(lambda: seeders_of(run, run.path("scrape.torrent"), http_url) == 1, 60, step=0.5)
    if not run.check("the seeder's announce reached the shoal tracker", announced,
                     open(seeder.log, "rb").read()[-500:]):
        return run.finish()

    code, out, err = scrape(run, run.path("scrape.torrent"))
    run.check("scrape: exit 0 with a tracker answering", code == 0, f"{code} {err}")
    hrow, urow, drow = table_row(out, http_url), table_row(out, udp_url), table_row(out, dead_url)
    run.check("scrape: one seeder over HTTP", hrow is not None and hrow[:2] == ["1", "0"], out)
    run.check("scrape: one seeder over UDP", urow is not None and urow[:2] == ["1", "0"], out)
    run.check("scrape: an error line for the dead tracker", drow is not None and drow[0] == "error:", out)
    run.check("scrape: trackers in the torrent's order",
              out.find(http_url) < out.find(udp_url) < out.find(dead_url), out)

    code, out, err = scrape(run, run.path("scrape.torrent"), "--json")
    rows = json_rows(out)
    run.check("scrape --json: exit 0, every line JSON", code == 0 and rows is not None, f"{code} {out} {err}")
    rows = rows or {}
    for url, name in ((http_url, "HTTP"), (udp_url, "UDP")):
        r = rows.get(url, {})
        run.check(f"scrape --json: {name} row", r.get("event") == "scrape" and r.get("seeders") == 1 and
                  r.get("leechers") == 0 and isinstance(r.get("completed"), int) and r.get("info_hash") == ih, r)
    d = rows.get(dead_url, {})
    run.check("scrape --json: the dead tracker's error", d.get("event") == "scrape" and d.get("error") and
              "seeders" not in d, d)
    run.check("scrape --json: plain decimal numbers", not re.search(r':-?[0-9.]+[eE]', out), out)

    # A magnet link with the UDP tracker.
    magnet = f"magnet:?xt=urn:btih:{ih}&tr=" + urllib.parse.quote(udp_url, safe="")
    code, out, err = scrape(run, magnet, "--json")
    r = (json_rows(out) or {}).get(udp_url, {})
    run.check("scrape a magnet link", code == 0 and r.get("seeders") == 1, f"{code} {out} {err}")

    # opentracker over HTTP (BEP 48 /scrape), told of the torrent by a second seeder (a
    # seeder announces to the first tier that answers only) with a copy of the data.
    h.shoal_create(run, src, run.path("ot.torrent"), "-a", ot_url)
    shutil.copytree(run.path("data"), run.path("data2"), ignore=shutil.ignore_patterns(".shoal"))
    h.shoal_seed(run, run.path("ot.torrent"), run.path("data2"), h.free_port(), "seed2.log", "--no-dht", "--no-lsd")
    ok = h.wait_for(lambda: seeders_of(run, run.path("ot.torrent"), ot_url) == 1, 60, step=0.5)
    run.check("opentracker: one seeder over HTTP", ok)
    code, out, err = scrape(run, run.path("ot.torrent"))
    row = table_row(out, ot_url)
    run.check("opentracker: the table row", code == 0 and row is not None and row[0] == "1", f"{code} {out} {err}")

    # A v2-only torrent is asked for by its SHA-256 truncated to 20 bytes, as the seeder announces it.
    v2 = h.shoal_create(run, src, run.path("v2.torrent"), "--v2", "-a", http_url)
    h.shoal_seed(run, run.path("v2.torrent"), run.path("data2"), h.free_port(), "seed3.log", "--no-dht", "--no-lsd")
    ok = h.wait_for(lambda: seeders_of(run, run.path("v2.torrent"), http_url) == 1, 60, step=0.5)
    code, out, err = scrape(run, run.path("v2.torrent"), "--json")
    r = (json_rows(out) or {}).get(http_url, {})
    run.check("scrape a v2-only torrent by its truncated hash",
              ok and code == 0 and r.get("info_hash") == v2["info_hash_v2"][:40], f"{code} {out} {err}")

    # No tracker answering: exit 1.
    h.shoal_create(run, src, run.path("dead.torrent"), "-a", dead_url)
    code, out, err = scrape(run, run.path("dead.torrent"), "--timeout", "5")
    run.check("scrape: exit 1 when no tracker answers", code == 1 and "error:" in out, f"{code} {out} {err}")

    # Argument errors: exit 2, pointing at the help.
    for argv in ([], ["--timeout", "0", run.path("scrape.torrent")], ["--bogus", run.path("scrape.torrent")]):
        r = subprocess.run([run.shoal, "scrape", *argv], capture_output=True, text=True, timeout=30)
        run.check(f"scrape {' '.join(argv[:2])}: exit 2", r.returncode == 2 and "shoal scrape --help" in r.stderr,
                  f"{r.returncode} {r.stderr}")
    return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
