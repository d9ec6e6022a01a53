#!/usr/bin/python3
"""`shoal sync run --tracker`: devices of a folder find each other through a tracker alone.

Two folders, each on two devices started with --local (no LAN multicast, no DHT) and no
--peer: one pair announces to `shoal tracker` over HTTP, the other to opentracker over UDP
(whitelisting the folder's DHT id, which `sync status --json` prints). In each pair a file
written on the first device appears, byte for byte, on the second, and one written on the
second appears on the first; the tracker lists both devices under the folder's DHT id
(shoal tracker's scrape shows two). A device given a tracker URL that is not one is
refused (exit 2).

Usage: sync_tracker_test.py --shoal PATH
"""
import argparse
import json
import os
import subprocess

import harness as h
from tracker_test import start_tracker


def init_pair(run, name):
    a, b = run.path(name + "-a"), run.path(name + "-b")
    keys = json.loads(subprocess.run([run.shoal, "sync", "init", a, "--json"], check=True, capture_output=True,
                                     text=True, timeout=60).stdout)
    subprocess.run([run.shoal, "sync", "join", b, "-"], input=keys["read_write_key"], check=True,
                   capture_output=True, text=True, timeout=60)
    status = json.loads(subprocess.run([run.shoal, "sync", "status", a, "--json"], check=True, capture_output=True,
                                       text=True, timeout=60).stdout)
    return a, b, status["dht_id"]


def run_device(run, folder, tracker, log):
    return run.spawn([run.shoal, "sync", "run", folder, "--port", "0", "--local", "--json", "--tracker", tracker], log)


def same_file(path, data):
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def pair_syncs(run, name, a, b):
    data_a = os.urandom(300_000)
    with open(os.path.join(a, "from-a.bin"), "wb") as f:
        f.write(data_a)
    ok = h.wait_for(lambda: same_file(os.path.join(b, "from-a.bin"), data_a), 90, step=0.2)
    run.check(f"{name}: a file written on the first device arrives on the second (found through the tracker)",
              bool(ok))
    data_b = os.urandom(200_000)
    with open(os.path.join(b, "from-b.txt"), "wb") as f:
        f.write(data_b)
    ok = h.wait_for(lambda: same_file(os.path.join(a, "from-b.txt"), data_b), 90, step=0.2)
    run.check(f"{name}: and one written on the second arrives on the first", bool(ok))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "sync-tracker")

    # shoal tracker over HTTP.
    _, tport, _ = start_tracker(run, "tracker.log")
    http_url = f"http://127.0.0.1:{tport}/announce"
    a, b, dht_id = init_pair(run, "http")
    pa = run_device(run, a, http_url, "http-a.log")
    pb = run_device(run, b, http_url, "http-b.log")
    pair_syncs(run, "shoal tracker (HTTP)", a, b)

    def listed():
        r = subprocess.run([run.shoal, "scrape", f"magnet:?xt=urn:btih:{dht_id}&tr=" + http_url, "--local",
                            "--no-dht", "--json", "--timeout", "5"], capture_output=True, text=True, timeout=30)
        rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        return rows[0] if rows and rows[0].get("leechers", 0) + rows[0].get("seeders", 0) == 2 else None
    row = h.wait_for(listed, 30, step=0.5)
    run.check("shoal tracker lists both devices under the folder's DHT id", bool(row), str(row))
    run.stop(pa)
    run.stop(pb)

    # opentracker over UDP, whitelisting the folder's DHT id.
    c, d, dht_id2 = init_pair(run, "udp")
    oport = h.start_opentracker(run, [dht_id2])
    udp_url = f"udp://127.0.0.1:{oport}/announce"
    run_device(run, c, udp_url, "udp-c.log")
    run_device(run, d, udp_url, "udp-d.log")
    pair_syncs(run, "opentracker (UDP)", c, d)

    r = subprocess.run([run.shoal, "sync", "run", c, "--tracker", "ftp://x/announce"], capture_output=True, text=True,
                       timeout=30)
    run.check("--tracker with a URL that is not a tracker's: exit 2", r.returncode == 2, f"{r.returncode} {r.stderr}")
    return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
