#!/usr/bin/python3
"""Transport benchmark: uTP against TCP, shoal and libtorrent side by side in one run.

1. Loopback, one seeder and one leecher, --size MiB (default 256): shoal->shoal and
   libtorrent->libtorrent, each over TCP only and over uTP only. MB/s is file size over the
   leecher's wall time (start-up included).
2. Through relays adding 50 ms each way, --relay-size MiB (default 32): uTP through a UDP
   relay that also drops 1% of datagrams each way (tests/interop/utp_relay.py), and TCP
   through bench/delay_relay.py (50 ms, no loss: a user-space TCP relay terminates TCP,
   so it cannot drop segments; TCP's figure is therefore an upper bound).
3. Encryption: shoal->shoal over TCP with --encryption required (RC4) vs allowed.

Usage: transport.py --shoal PATH [--size MiB] [--relay-size MiB] [--repeat N]
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import harness as h  # noqa: E402
from swarm import proc_stats, timed  # noqa: E402

UTP_RELAY = os.path.join(HERE, "..", "tests", "interop", "utp_relay.py")


def seeder(run, kind, torrent, src, port, log, transport, extra=()):
    if kind == "shoal":
        p = run.spawn([run.shoal, "seed", torrent, "-d", src, "--port", str(port), "--local", "--skip-check",
                       "--transport", transport, "--no-dht", *extra], log)
    else:
        p = run.spawn([h.PY, h.LT_PEER, "seed", torrent, src, "--port", str(port), "--seconds", "900",
                       "--transport", transport], log)
    if transport == "utp":
        time.sleep(1.0)
    else:
        h.wait_listening(port)
    time.sleep(0.5)
    return p


def leecher(run, kind, torrent, dst, port, peer, transport, extra=()):
    if kind == "shoal":
        return [run.shoal, "download", torrent, "-d", dst, "--port", str(port), "--local", "--seed-time", "0",
                "--peer", peer, "--transport", transport, "--no-dht", *extra]
    return [h.PY, h.LT_PEER, "download", torrent, dst, "--port", str(port), "--peer", peer, "--seconds", "900",
            "--transport", transport]


def one(run, kind, transport, torrent, src, size, relay=None, extra=(), label=""):
    os.sync()
    sport = h.free_port()
    tag = f"{kind}-{transport}{label}"
    sp = seeder(run, kind, torrent, src, sport, f"seed-{tag}.log", transport, extra)
    target = f"127.0.0.1:{sport}"
    rp = None
    if relay:
        rport = h.free_port()
        if transport == "utp":
            rp = run.spawn([sys.executable, UTP_RELAY, "--listen", str(rport), "--target", target, "--delay-ms",
                            str(relay[0]), "--loss", str(relay[1])], f"relay-{tag}.log")
            time.sleep(0.5)
        else:
            rp = run.spawn([sys.executable, os.path.join(HERE, "delay_relay.py"), "--listen", str(rport), "--target",
                            target, "--delay-ms", str(relay[0])], f"relay-{tag}.log")
            h.wait_listening(rport)
        target = f"127.0.0.1:{rport}"
    dst = run.path(f"dst-{tag}")
    os.makedirs(dst)
    rc, wall, cpu, rss = timed(run, leecher(run, kind, torrent, dst, h.free_port(), target, transport, extra),
                               f"leech-{tag}.log")
    scpu, srss = proc_stats(sp.pid)
    run.stop(sp)
    if rp:
        run.stop(rp)
    ok = rc == 0 and h.same_tree(src, dst, [os.listdir(src)[0]])
    subprocess.run(["rm", "-rf", dst])
    return {"kind": kind, "transport": transport, "ok": ok, "mbps": size / wall / 1e6 if wall else 0, "wall": wall,
            "cpu": cpu + scpu, "rss": max(rss, srss)}


def table(title, rows):
    print(f"### {title}\n")
    print("| peers | transport | MB/s | wall s | CPU s (both) | peak RSS MiB | intact |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        name = "shoal → shoal" if r["kind"] == "shoal" else "libtorrent → libtorrent"
        print(f"| {name} | {r['transport']} | {r['mbps']:.1f} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} | "
              f"{'yes' if r['ok'] else 'NO'} |")
    print(flush=True)


def best(rows, kind, transport):
    vals = [r["mbps"] for r in rows if r["kind"] == kind and r["transport"] == transport and r["ok"]]
    return max(vals) if vals else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=256, help="MiB for loopback runs")
    ap.add_argument("--relay-size", type=int, default=32, help="MiB for the 50 ms / 1%% loss runs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-relay", action="store_true")
    args = ap.parse_args()
    run = h.Run(args.shoal, "bench-transport")
    try:
        src = run.path("src")
        h.write_random(os.path.join(src, "payload.bin"), args.size << 20, seed=1)
        t = run.path("t.torrent")
        h.shoal_create(run, os.path.join(src, "payload.bin"), t, "--v1", "--piece-size", "1MiB")
        subprocess.run(["cat", os.path.join(src, "payload.bin")], stdout=subprocess.DEVNULL)
        rows = []
        # shoal with --encryption allowed: between two shoal peers the default (preferred)
        # picks RC4, which section 3 measures on its own; libtorrent's default settles on
        # plaintext between two libtorrent peers.
        for _ in range(args.repeat):
            for kind in ("shoal", "lt"):
                for transport in ("tcp", "utp"):
                    extra = ("--encryption", "allowed") if kind == "shoal" else ()
                    rows.append(one(run, kind, transport, t, src, args.size << 20, extra=extra))
        table(f"Loopback, {args.size} MiB, best of {args.repeat} shown below, every run listed", rows)
        s_tcp, s_utp, l_tcp, l_utp = (best(rows, "shoal", "tcp"), best(rows, "shoal", "utp"), best(rows, "lt", "tcp"),
                                      best(rows, "lt", "utp"))
        print(f"- shoal uTP / shoal TCP: **{s_utp / s_tcp:.2f}** ({s_utp:.0f} vs {s_tcp:.0f} MB/s)" if s_tcp else "")
        print(f"- libtorrent uTP / libtorrent TCP: **{l_utp / l_tcp:.2f}** ({l_utp:.0f} vs {l_tcp:.0f} MB/s)"
              if l_tcp else "")
        print(f"- shoal uTP / libtorrent uTP: **{s_utp / l_utp:.2f}**\n" if l_utp else "")

        enc = []
        for _ in range(args.repeat):
            for pol in ("allowed", "required"):
                r = one(run, "shoal", "tcp", t, src, args.size << 20, extra=("--encryption", pol), label=f"-{pol}")
                r["transport"] = f"tcp, encryption {pol}"
                enc.append(r)
        table(f"MSE/PE: shoal → shoal over TCP, {args.size} MiB", enc)

        if not args.skip_relay:
            rsrc = run.path("rsrc")
            h.write_random(os.path.join(rsrc, "payload.bin"), args.relay_size << 20, seed=2)
            rt = run.path("rt.torrent")
            h.shoal_create(run, os.path.join(rsrc, "payload.bin"), rt, "--v1", "--piece-size", "256KiB")
            rrows = []
            for kind in ("shoal", "lt"):
                extra = ("--encryption", "allowed") if kind == "shoal" else ()
                rrows.append(one(run, kind, "utp", rt, rsrc, args.relay_size << 20, relay=(50, 0.01), label="-relay",
                                 extra=extra))
                rrows.append(one(run, kind, "tcp", rt, rsrc, args.relay_size << 20, relay=(50, 0.0), label="-relay",
                                 extra=extra))
            table(f"Through relays, 50 ms each way (100 ms RTT), {args.relay_size} MiB; uTP also loses 1% each way",
                  rrows)
    finally:
        run.finish()


if __name__ == "__main__":
    main()
