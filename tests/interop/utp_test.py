#!/usr/bin/python3
"""uTP (BEP 29) end to end, each download checked byte for byte:
- libtorrent both ways with uTP as the only transport on both sides (libtorrent reports a
  uTP socket; shoal logs the connection as utp);
- shoal to shoal through utp_relay.py (50 ms each way, 1% loss each way);
- --transport both against a TCP-only libtorrent: TCP straight away; against a uTP-only
  libtorrent (which listens on TCP and resets it): uTP takes over;
- the DHT shares uTP's socket: a shoal seeder with --transport utp is found on the DHT
  by another shoal.

Usage: utp_test.py --shoal PATH [--size MiB]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import harness as h

RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "utp_relay.py")


def log_lines(run, log):
    return open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()


def lt_totals(p):
    out = {}
    for line in open(p.log, "rb").read().decode().splitlines():
        if line.startswith("{"):
            out.update(json.loads(line).get("peer_totals", {}))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=16, help="MiB of test data")
    args = ap.parse_args()
    run = h.Run(args.shoal, "utp")
    try:
        name = "payload.bin"
        src = run.path("src")
        h.write_random(os.path.join(src, name), args.size << 20)
        t = run.path("t.torrent")
        info = h.shoal_create(run, os.path.join(src, name), t, "--v1")

        # shoal seeds, libtorrent downloads, uTP only.
        dst = run.path("dst-lt")
        sport, lport = h.free_port(), h.free_port()
        sp = h.shoal_seed(run, t, src, sport, "seed1.log", "-v", "--no-dht", "--transport", "utp")
        h.wait_listening(sport)
        lp = h.lt_peer(run, "download", t, dst, lport, "lt1.log", peers=[f"127.0.0.1:{sport}"], seconds=120,
                       extra=["--transport", "utp"])
        rc, _ = h.lt_result(lp, timeout=150)
        run.stop(sp)
        totals = lt_totals(lp)
        run.check("libtorrent downloads from shoal over uTP, bytes identical",
                  rc == 0 and h.same_tree(src, dst, [name]), f"exit {rc}")
        run.check("libtorrent's connection to shoal is a uTP socket",
                  bool(totals) and all(v.get("utp") for v in totals.values()), json.dumps(totals))
        run.check("shoal logs an incoming utp connection",
                  any("connected (incoming, utp" in l for l in log_lines(run, "seed1.log")),
                  "\n".join(log_lines(run, "seed1.log")[-5:]))

        # libtorrent seeds, shoal downloads, uTP only.
        dst = run.path("dst-shoal")
        sport, lport = h.free_port(), h.free_port()
        lp = h.lt_peer(run, "seed", t, src, sport, "lt2.log", seconds=150, extra=["--transport", "utp"])
        h.wait_lt_seeding(lp)
        time.sleep(0.5)
        rc = h.shoal_download(run, t, dst, lport, "dl2.log", "-v", "--no-dht", "--seed-time", "0", "--peer",
                              f"127.0.0.1:{sport}", "--stop-timeout", "60", "--transport", "utp", timeout=150)
        run.stop(lp)
        run.check("shoal downloads from libtorrent over uTP, bytes identical",
                  rc == 0 and h.same_tree(src, dst, [name]), f"exit {rc}")
        run.check("shoal logs an outgoing utp connection",
                  any("connected (outgoing, utp" in l for l in log_lines(run, "dl2.log")),
                  "\n".join(log_lines(run, "dl2.log")[-5:]))

        # shoal to shoal through a relay: 50 ms each way, 1% loss each way.
        dst = run.path("dst-relay")
        sport, dport = h.free_port(), h.free_port()
        sp = h.shoal_seed(run, t, src, sport, "seed3.log", "--no-dht", "--transport", "utp")
        h.wait_listening(sport)
        relay = subprocess.Popen([sys.executable, RELAY, "--listen", "0", "--target", f"127.0.0.1:{sport}",
                                  "--delay-ms", "50", "--loss", "0.01", "--seed", "3"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        rport = int(relay.stdout.readline().rsplit(":", 1)[1])
        start = time.time()
        rc = h.shoal_download(run, t, dst, dport, "dl3.log", "-v", "--no-dht", "--seed-time", "0", "--peer",
                              f"127.0.0.1:{rport}", "--stop-timeout", "60", "--transport", "utp", timeout=300)
        secs = time.time() - start
        relay.terminate()
        relay_stats = relay.communicate(timeout=10)[1].strip()
        run.stop(sp)
        run.check(f"shoal to shoal over uTP through 50 ms + 1% loss, bytes identical ({secs:.1f} s; {relay_stats})",
                  rc == 0 and h.same_tree(src, dst, [name]), f"exit {rc}")
        # The relay's own count, read from its summary line: a traceback or no line at all
        # is no evidence of loss.
        m = re.search(r"relay: (\d+) in, (\d+) dropped, (\d+) sent", relay_stats)
        run.check("... and the relay dropped packets on the way", bool(m) and int(m.group(2)) > 0, relay_stats)

        # --transport both against a peer without uTP: TCP after uTP gets no answer.
        dst = run.path("dst-both")
        sport, lport = h.free_port(), h.free_port()
        lp = h.lt_peer(run, "seed", t, src, sport, "lt4.log", seconds=150, extra=["--transport", "tcp"])
        h.wait_lt_seeding(lp)
        time.sleep(0.5)
        rc = h.shoal_download(run, t, dst, lport, "dl4.log", "-v", "--no-dht", "--seed-time", "0", "--peer",
                              f"127.0.0.1:{sport}", "--stop-timeout", "60", "--transport", "both", timeout=150)
        run.stop(lp)
        run.check("--transport both vs TCP-only libtorrent: download completes over TCP",
                  rc == 0 and h.same_tree(src, dst, [name]) and
                  any("connected (outgoing, tcp" in l for l in log_lines(run, "dl4.log")),
                  f"exit {rc}\n" + "\n".join(log_lines(run, "dl4.log")[-5:]))

        # --transport both (the default) against a libtorrent that takes uTP peers only: it
        # still listens on TCP but resets every TCP connection, so shoal must learn that and
        # dial uTP; the download has to come over a uTP connection.
        dst = run.path("dst-both-utp")
        sport, lport = h.free_port(), h.free_port()
        lp = h.lt_peer(run, "seed", t, src, sport, "lt4u.log", seconds=150, extra=["--transport", "utp"])
        h.wait_lt_seeding(lp)
        time.sleep(0.5)
        rc = h.shoal_download(run, t, dst, lport, "dl4u.log", "-v", "--no-dht", "--seed-time", "0", "--peer",
                              f"127.0.0.1:{sport}", "--stop-timeout", "60", "--transport", "both", timeout=150)
        run.stop(lp)
        lines = log_lines(run, "dl4u.log")
        run.check("--transport both vs uTP-only libtorrent: download completes over a uTP connection",
                  rc == 0 and h.same_tree(src, dst, [name]) and
                  any(f"127.0.0.1:{sport} connected (outgoing, utp" in l for l in lines),
                  f"exit {rc}\n" + "\n".join([l for l in lines if "connect" in l or "closed" in l][-8:]))

        # The DHT on uTP's socket: a seeder with --transport utp announces on the DHT (a
        # bootstrap node of its own), a downloader finds it there with no --peer.
        dst = run.path("dst-dht")
        bport, sport, dport = h.free_port(), h.free_port(), h.free_port()
        bp = run.spawn([run.shoal, "dht", "node", "--port", str(bport), "--local"], "boot.log")
        time.sleep(0.5)
        sp = h.shoal_seed(run, t, src, sport, "seed5.log", "-v", "--transport", "utp", "--dht-bootstrap",
                          f"127.0.0.1:{bport}", "--dht-state", run.path("s5.state"))
        h.wait_listening(sport)
        # The downloader starts once another node's lookup finds the seeder on the DHT.
        run.check("the uTP-only seeder's announce is on the DHT",
                  h.wait_dht_peer(run, info["info_hash_v1"], f"127.0.0.1:{sport}", f"127.0.0.1:{bport}"))
        rc = h.shoal_download(run, t, dst, dport, "dl5.log", "-v", "--seed-time", "0", "--transport", "utp",
                              "--dht-bootstrap", f"127.0.0.1:{bport}", "--dht-state", run.path("d5.state"),
                              "--stop-timeout", "60", timeout=150)
        run.stop(sp)
        run.stop(bp)
        lines = log_lines(run, "dl5.log")
        run.check("the DHT shares uTP's socket: a seeder found on the DHT, downloaded over uTP",
                  rc == 0 and h.same_tree(src, dst, [name]) and any("connected (outgoing, utp" in l for l in lines),
                  f"exit {rc}\n" + "\n".join(lines[-8:]))
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
