#!/usr/bin/python3
"""`shoal scrape` against `shoal tracker` (HTTP and UDP) and opentracker (HTTP), on loopback.

A shoal seeder announces a torrent to the shoal tracker; once its announce is in (polled,
never a fixed sleep), `shoal scrape` on a torrent of the same data listing the shoal
tracker over HTTP and UDP plus a dead tracker (a closed port) shows one seeder for each
live tracker and an error line for the dead one, exit 0; --json lines parse and carry the
numbers; a magnet link works the same, and a v2-only torrent (asked for by its truncated
hash); opentracker, told of the torrent by a second seeder, answers the HTTP scrape; a
torrent whose only tracker is dead exits 1; the DHT (BEP 33), a shoal node and a libtorrent
node holding two seeds and a downloader, gives those counts; argument errors exit 2.

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

LT_DHT = h.os.path.join(h.HERE, "lt_dht.py")


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


def dht_listening(run, log, timeout=10):
    return h.wait_for(lambda: any(l.startswith("{") and '"event":"listening"' in l
                                  for l in open(run.path(log), errors="replace").read().splitlines()), timeout,
                      step=0.05)


def dht_scrape(run, ih):
    sport = h.free_port()
    run.spawn([run.shoal, "dht", "node", "--port", str(sport), "--local", "--json", "--no-ipv6"], "dht-node.log")
    if not run.check("DHT: the shoal node listens", bool(dht_listening(run, "dht-node.log"))):
        return
    lport = h.free_port()
    lt = run.spawn([h.PY, LT_DHT, "node", "--port", str(lport), "--bootstrap", f"127.0.0.1:{sport}",
                    "--seconds", "300"], "lt-dht.log")
    def joined():  # the shoal node has met the libtorrent node (its stats line, every second)
        lines = [l for l in open(run.path("dht-node.log"), errors="replace").read().splitlines()
                 if l.startswith("{") and '"event":"stats"' in l]
        return lines and json.loads(lines[-1]).get("nodes", 0) >= 1

    if not run.check("DHT: the libtorrent node joined", bool(h.wait_for(joined, 60, step=0.2)),
                     open(lt.log, errors="replace").read()[-500:]):
        return
    boot = ["--dht-bootstrap", f"127.0.0.1:{sport}"]
    for addr, seed in (("127.0.0.2", True), ("127.0.0.3", True), ("127.0.0.4", False)):
        r = subprocess.run([run.shoal, "dht", "get-peers", ih, "--announce", "5555", *(["--seed"] if seed else []),
                            "--bind", addr, "--port", "0", "--local", "--no-ipv6", *boot, "--json"],
                           capture_output=True, text=True, timeout=60)
        run.check(f"DHT: {addr} announced", r.returncode in (0, 4), f"{r.returncode} {r.stderr}")
    magnet = f"magnet:?xt=urn:btih:{ih}"  # no tracker: the DHT alone

    def dht_row():
        code, out, _ = scrape(run, magnet, *boot, "--json", "--timeout", "10")
        return (json_rows(out) or {}).get("dht") if code == 0 else None

    want = lambda r: r and r.get("seeders") == 2 and r.get("leechers") == 1 and r.get("nodes", 0) >= 2  # noqa: E731
    row = h.wait_for(lambda: want(dht_row()) and dht_row(), 60, step=0.5)
    run.check("DHT scrape: two seeders and a leecher, from the shoal and the libtorrent node (BEP 33)", want(row),
              str(dht_row()))
    code, out, err = scrape(run, magnet, *boot, "--timeout", "10")
    line = next((l for l in out.splitlines() if l.split()[1:2] == ["DHT"]), "")
    run.check("DHT scrape: the table's DHT row", code == 0 and line.split()[2:4] == ["2", "1"], f"{code} {out} {err}")
    code, out, err = scrape(run, magnet, "--no-dht")
    run.check("DHT scrape: a magnet without trackers and --no-dht is refused", code == 1 and "--no-dht" in err,
              f"{code} {out} {err}")
    code, out, err = scrape(run, run.path("scrape.torrent"), "--json", "--timeout", "5")
    run.check("DHT scrape: --local without --dht-bootstrap leaves the DHT out",
              code == 0 and "dht" not in (json_rows(out) or {}), out)


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

    # BEP 33 on the DHT: a shoal DHT node and a libtorrent one hold two seeds and a downloader
    # (announced from 127.0.0.2-4: the filters count addresses); the scrape's lookup merges the
    # filters both return.
    dht_scrape(run, ih)

    # Argument errors: exit 2, pointing at the help.
    for argv in ([], ["--timeout", "0", run.path("scrape.torrent")], ["--bogus", run.path("scrape.torrent")]):
        r = subprocess.run([run.shoal, "scrape", *argv], capture_output=True, text=True, timeout=30)
        run.check(f"scrape {' '.join(argv[:2])}: exit 2", r.returncode == 2 and "shoal scrape --help" in r.stderr,
                  f"{r.returncode} {r.stderr}")
    return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
