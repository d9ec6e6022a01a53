#!/usr/bin/python3
"""10,000 torrents in `shoal daemon` and in `transmission-daemon` 3.00, in the same run.

Each daemon starts with its state folder already holding N generated torrents (one
16 KiB file each, no data on disk, no trackers, DHT/LSD/port mapping off, default queue
settings), the way a seedbox restarts. Measured for each, from its own process:
  - load: seconds from the process start until session-stats counts all N torrents;
  - list: a torrent-get of all N with 6 fields (id, name, status, percentDone,
    rateDownload, rateUpload), median of 5, over Transmission RPC;
  - peak RSS (VmHWM) after loading and the lists;
  - idle CPU: the share of one core used during 30 s after loading.

With --web, shoal's web UI is loaded in headless Chromium too: milliseconds until the first
torrent row shows (median of 3) and how many rows the page holds.

Usage: bench/daemon_scale.py --shoal build/shoal [--torrents 10000] [--idle 30] [--web] [--json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
import bencoding  # noqa: E402
import harness as h  # noqa: E402

FIELDS = ["id", "name", "status", "percentDone", "rateDownload", "rateUpload"]


def make_torrents(n, out):
    """N single-file v1 torrents; returns [(info-hash hex, bytes)]."""
    import hashlib
    os.makedirs(out, exist_ok=True)
    made = []
    for i in range(n):
        info = {"length": 16384, "name": f"file-{i:05d}.bin", "piece length": 16384,
                "pieces": hashlib.sha1(b"piece %d" % i).digest()}
        meta = bencoding.encode({"info": info, "created by": "daemon_scale.py"})
        ih = hashlib.sha1(bencoding.encode(info)).hexdigest()
        made.append((ih, meta))
    return made


class Rpc:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/transmission/rpc"
        self.sid = ""

    def call(self, method, timeout=60, **args):
        body = json.dumps({"method": method, "arguments": args}).encode()
        for _ in range(3):
            req = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"X-Transmission-Session-Id": self.sid})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    self.sid = e.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise
        raise RuntimeError("no session id")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / tick


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def first_render(port):
    """The web UI's first render in headless Chromium (tests/web/first_render.mjs)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "web", "first_render.mjs")
    r = subprocess.run(["node", script, "--url", f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                       timeout=300)
    return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-300:]}


def measure(name, argv, port, n, idle, env=None, web=False):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    rpc = Rpc(port)
    loaded = None
    try:
        while time.monotonic() - t0 < 600:
            try:
                count = rpc.call("session-stats", timeout=10)["arguments"]["torrentCount"]
                if count >= n:
                    loaded = time.monotonic() - t0
                    break
            except (OSError, urllib.error.URLError, RuntimeError, ValueError):
                pass
            time.sleep(0.02)
        lists = []
        for _ in range(5):
            s = time.monotonic()
            r = rpc.call("torrent-get", fields=FIELDS)
            lists.append(time.monotonic() - s)
            assert len(r["arguments"]["torrents"]) == n, len(r["arguments"]["torrents"])
        time.sleep(2)
        c0, w0 = cpu_seconds(p.pid), time.monotonic()
        time.sleep(idle)
        cpu = (cpu_seconds(p.pid) - c0) / (time.monotonic() - w0)
        rss = peak_rss_mb(p.pid)
        extra = first_render(port) if web else {}
        return {**extra, "daemon": name, "torrents": n, "load_s": round(loaded, 2) if loaded else None,
                "list_ms": round(statistics.median(lists) * 1000, 1), "peak_rss_mb": round(rss, 1),
                "idle_cpu_pct": round(cpu * 100, 2)}
    finally:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--torrents", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--web", action="store_true", help="also time the web UI's first render (Chromium)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="shoal-daemon-scale-")
    try:
        made = make_torrents(args.torrents, work)
        # shoal: STATE/torrents/KEY.torrent + KEY.add, as the daemon writes them.
        state = os.path.join(work, "shoal-state")
        tdir = os.path.join(state, "torrents")
        os.makedirs(tdir)
        dl = os.path.join(work, "shoal-dl")
        for i, (ih, meta) in enumerate(made):
            with open(os.path.join(tdir, ih + ".torrent"), "wb") as f:
                f.write(meta)
            with open(os.path.join(tdir, ih + ".add"), "w") as f:
                json.dump({"order": i + 1, "save_path": dl, "paused": False, "labels": []}, f)
        # Transmission: CONFIG/torrents/*.torrent, loaded at start.
        cfg = os.path.join(work, "tr-config")
        os.makedirs(os.path.join(cfg, "torrents"))
        for ih, meta in made:
            with open(os.path.join(cfg, "torrents", ih[:16] + ".torrent"), "wb") as f:
                f.write(meta)
        results = []
        port = h.free_port()
        results.append(measure("shoal", [os.path.abspath(args.shoal), "daemon", "--state-dir", state, "--download-dir",
                                         dl, "--rpc-port", str(port), "--port", str(h.free_port()), "--local",
                                         "--no-dht", "--no-lsd"], port, args.torrents, args.idle, web=args.web))
        port = h.free_port()
        results.append(measure("transmission-daemon 3.00",
                               ["transmission-daemon", "-f", "-g", cfg, "-p", str(port), "-T", "-O", "-Y", "-M",
                                "-w", os.path.join(work, "tr-dl"), "-P", str(h.free_port()), "--log-error"],
                               port, args.torrents, args.idle))
        s, t = results
        ratios = {k: round(t[k] / s[k], 2) if s[k] else None for k in ("load_s", "list_ms", "peak_rss_mb", "idle_cpu_pct")}
        if args.json:
            print(json.dumps({"results": results, "transmission_over_shoal": ratios}))
        else:
            for r in results:
                print(f"{r['daemon']:26} load {r['load_s']} s  list {r['list_ms']} ms  peak RSS {r['peak_rss_mb']} MB  "
                      f"idle CPU {r['idle_cpu_pct']} %" +
                      (f"  web UI first render {r['first_render_ms']} ms ({r['rows_in_page']} rows in the page)"
                       if "first_render_ms" in r else ""))
            print("transmission / shoal:", ratios)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
