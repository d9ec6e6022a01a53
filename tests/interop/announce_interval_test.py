#!/usr/bin/python3
"""Announces follow the tracker's `interval`, and `shoal tracker` keeps a peer between them.

1. A tracker written here (HTTP and UDP, BEP 3 / BEP 15) asks for announces every 10 s
   (`min interval` 8 s over HTTP) and records when each comes. Two `shoal download`s of a
   torrent nobody seeds, one per protocol, run ~26 s: the first announce is `started` with
   numwant 50; the following ones come 10 s apart (never sooner, and under 15 s); on SIGTERM
   `stopped` (numwant 0) is sent at once, whatever the interval. A `shoal daemon` asked to
   re-announce (transmission-remote --reannounce) right after its first announce waits
   for the tracker's `min interval`, then announces (before the regular interval).
2. `shoal tracker --interval 10` with a shoal client announcing to it: the peer stays in the
   swarm for the whole run (it is never expired between two announces), and a
   `--peer-timeout` not longer than `--interval` is refused with exit 2.

    /usr/bin/python3 tests/interop/announce_interval_test.py --shoal build/shoal
"""

import argparse
import http.server
import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from harness import Run, free_port, main_guard, shoal_create, wait_for, wait_listening, write_random

INTERVAL = 10
MIN_INTERVAL = 8
RUN_FOR = 26  # seconds: the started announce and two regular ones


def bint(n):
    return b"i%de" % n


def bstr(s):
    return b"%d:%s" % (len(s), s)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.seen = []  # (client's port, monotonic time, event, numwant)

    def add(self, port, event, numwant):
        with self.lock:
            self.seen.append((port, time.monotonic(), event, numwant))

    def of(self, port):
        with self.lock:
            return [s for s in self.seen if s[0] == port]


def http_tracker(rec, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, encoding="latin-1")
            rec.add(int(q.get("port", ["0"])[0]), q.get("event", ["none"])[0], int(q.get("numwant", ["-1"])[0]))
            body = (b"d" + bstr(b"interval") + bint(INTERVAL) + bstr(b"min interval") + bint(MIN_INTERVAL) +
                    bstr(b"peers") + bstr(b"") + b"e")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def udp_tracker(rec, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    events = {0: "none", 1: "completed", 2: "started", 3: "stopped"}

    def serve():
        while True:
            try:
                pkt, src = s.recvfrom(2048)
            except OSError:
                return
            if len(pkt) >= 16 and struct.unpack(">I", pkt[8:12])[0] == 0:  # connect
                s.sendto(struct.pack(">IIQ", 0, struct.unpack(">I", pkt[12:16])[0], 0x1234), src)
            elif len(pkt) >= 98 and struct.unpack(">I", pkt[8:12])[0] == 1:  # announce
                tid = struct.unpack(">I", pkt[12:16])[0]
                ev = struct.unpack(">I", pkt[80:84])[0]
                numwant, port = struct.unpack(">iH", pkt[92:98])
                rec.add(port, events.get(ev, str(ev)), numwant)
                s.sendto(struct.pack(">IIIII", 1, tid, INTERVAL, 0, 0), src)

    threading.Thread(target=serve, daemon=True).start()
    return s


def remote(port, *args):
    r = subprocess.run(["transmission-remote", f"127.0.0.1:{port}", *args], capture_output=True, text=True,
                       timeout=30)
    return r.returncode, (r.stdout + r.stderr).strip()


def check_schedule(run, proto, seen):
    times = [t for _, t, _, _ in seen]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
    run.check(f"{proto}: the first announce is `started` with numwant 50",
              bool(seen) and seen[0][2] == "started" and seen[0][3] == 50, repr(seen[:1]))
    regular = [s for s in seen if s[2] == "none"]
    run.check(f"{proto}: regular announces follow the tracker's interval ({INTERVAL} s)", len(regular) >= 2,
              f"{len(seen)} announces, gaps {gaps}")
    run.check(f"{proto}: announces are {INTERVAL} s apart (not sooner, under 15 s)",
              bool(gaps) and all(INTERVAL - 0.3 <= g < 15 for g in gaps), f"gaps {gaps}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = Run(args.shoal, "announce-interval")
    rec = Recorder()
    hport, uport = free_port(), free_port()
    srv = http_tracker(rec, hport)
    usock = udp_tracker(rec, uport)

    sport = free_port()
    tracker = run.spawn([run.shoal, "tracker", "--local", "--port", str(sport), "--interval", str(INTERVAL),
                         "--json"], "tracker.log")
    wait_listening(sport)

    write_random(run.path("src", "data.bin"), 256 * 1024, seed=5)
    clients, ports = {}, {}
    for proto, url in (("http", f"http://127.0.0.1:{hport}/announce"), ("udp", f"udp://127.0.0.1:{uport}"),
                       ("shoal", f"http://127.0.0.1:{sport}/announce")):
        t = run.path(f"{proto}.torrent")
        # Each torrent is its own (the name differs): nobody seeds it, the client waits. v1
        # only: a hybrid announces twice a round (its v1 and v2 swarms).
        shoal_create(run, run.path("src", "data.bin"), t, "--v1", "--name", f"{proto}.bin", "-a", url)
        ports[proto] = free_port()
        clients[proto] = run.spawn([run.shoal, "download", t, "-d", run.path(f"dl-{proto}"), "--port",
                                    str(ports[proto]), "--local", "--no-dht", "--no-lsd", "--json-progress"],
                                   f"{proto}.log")

    swarm_sizes = []
    start = time.monotonic()
    while time.monotonic() - start < RUN_FOR:
        with urllib.request.urlopen(f"http://127.0.0.1:{sport}/stats", timeout=5) as r:
            swarm_sizes.append(json.loads(r.read())["peers"])
        time.sleep(0.5)

    stop_at = {}
    for proto in ("http", "udp"):
        stop_at[proto] = time.monotonic()
        run.stop(clients[proto])
    for proto in ("http", "udp"):
        seen = rec.of(ports[proto])
        check_schedule(run, proto, [s for s in seen if s[2] != "stopped"])
        stopped = [s for s in seen if s[2] == "stopped"]
        run.check(f"{proto}: `stopped` (numwant 0) is sent at once on SIGTERM",
                  len(stopped) == 1 and stopped[0][3] == 0 and stopped[0][1] - stop_at[proto] < 3.5,
                  repr(seen[-2:]))

    first = next((i for i, n in enumerate(swarm_sizes) if n == 1), None)
    run.check(f"shoal tracker --interval {INTERVAL}: the client stays in the swarm between its announces",
              first is not None and first < 12 and all(n == 1 for n in swarm_sizes[first:]),
              f"peers sampled every 0.5 s: {swarm_sizes}")
    run.stop(clients["shoal"])
    run.check("shoal tracker: the stopped client leaves the swarm",
              wait_for(lambda: json.loads(urllib.request.urlopen(f"http://127.0.0.1:{sport}/stats",
                                                                 timeout=5).read())["peers"] == 0, 5))
    run.stop(tracker)

    # A manual re-announce (Transmission's torrent-reannounce) waits for `min interval`.
    dport, rport = free_port(), free_port()
    dt = run.path("daemon.torrent")
    shoal_create(run, run.path("src", "data.bin"), dt, "--v1", "--name", "daemon.bin", "-a",
                 f"http://127.0.0.1:{hport}/announce")
    run.spawn([run.shoal, "daemon", "--state-dir", run.path("state"), "--download-dir", run.path("dl-daemon"),
               "--rpc-port", str(rport), "--port", str(dport), "--local", "--no-dht", "--no-lsd"], "daemon.log")
    wait_listening(rport)
    added = remote(rport, "-a", dt)
    first = wait_for(lambda: rec.of(dport), 20)
    asked = time.monotonic()
    again = remote(rport, "-t", "all", "--reannounce")
    wait_for(lambda: len(rec.of(dport)) >= 2, 15)
    seen = rec.of(dport)
    gap = seen[1][1] - seen[0][1] if len(seen) >= 2 else None
    run.check(f"a manual re-announce waits for the tracker's min interval ({MIN_INTERVAL} s), then goes",
              bool(first) and added[0] == 0 and again[0] == 0 and gap is not None and
              MIN_INTERVAL - 0.3 <= gap < INTERVAL - 0.5 and seen[1][1] > asked + 1,
              f"asked {asked - seen[0][1]:.1f} s after the first announce; gap {gap}; {added} {again}")

    p = subprocess.run([run.shoal, "tracker", "--local", "--port", "0", "--interval", "10", "--peer-timeout",
                        "10"], capture_output=True, text=True, timeout=30)
    run.check("shoal tracker: --peer-timeout not longer than --interval is refused (exit 2)",
              p.returncode == 2 and "--peer-timeout" in p.stderr and "tracker --help" in p.stderr,
              f"exit {p.returncode}: {p.stderr.strip()}")
    srv.shutdown()
    usock.close()
    return run.finish()


if __name__ == "__main__":
    main_guard(main)
