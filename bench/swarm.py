#!/usr/bin/python3
"""Transfer benchmark on loopback, shoal and libtorrent side by side in one run.

1. One seeder, one leecher, a file of --size MiB (default 1024), warm page cache:
   shoal->shoal, libtorrent->libtorrent, libtorrent->shoal, shoal->libtorrent.
   For each: MB/s (file size / leecher wall time, start-up included), CPU seconds and
   peak RSS of both sides. Dirty pages are flushed (sync) before every transfer.
2. One shoal seeder and --leechers shoal leechers (default 20), a smaller file.
3. Two peers through a relay adding 50 ms each way (100 ms RTT): shoal->shoal and
   libtorrent->libtorrent.

libtorrent runs from Python (python3-libtorrent 2.0.8): its RSS includes the Python
interpreter (about 25 MB), its CPU the polling loop. Prints a Markdown table.

Usage: swarm.py --shoal PATH [--size MiB] [--leechers N] [--skip-swarm] [--skip-relay]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import harness as h  # noqa: E402

TIME = ["/usr/bin/time", "-f", "TIME %e %U %S %M"]


def proc_stats(pid):
    """(cpu seconds, peak RSS MiB) of a running process from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return cpu, hwm


def main_pid(p):
    """The seeder's own pid (under ip netns / time wrappers there are none here)."""
    return p.pid


def timed(run, argv, log, timeout=600):
    """Runs argv under /usr/bin/time; returns (exit, wall s, cpu s, peak RSS MiB)."""
    with open(run.path(log), "wb") as f:
        p = subprocess.run(TIME + argv, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    for line in reversed(open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()):
        if line.startswith("TIME "):
            e, u, s, m = line.split()[1:]
            return p.returncode, float(e), float(u) + float(s), int(m) / 1024
    return p.returncode, 0.0, 0.0, 0.0


def start_seeder(run, kind, torrent, src, port, log, extra=()):
    if kind == "shoal":
        p = run.spawn([run.shoal, "seed", torrent, "-d", src, "--port", str(port), "--local", "--skip-check", *extra], log)
    else:
        p = run.spawn([h.PY, h.LT_PEER, "seed", torrent, src, "--port", str(port), "--seconds", "900"], log)
    h.wait_listening(port)
    time.sleep(0.5)
    return p


def leech_argv(run, kind, torrent, dst, port, peer):
    if kind == "shoal":
        return [run.shoal, "download", torrent, "-d", dst, "--port", str(port), "--local", "--seed-time", "0",
                "--peer", peer]
    return [h.PY, h.LT_PEER, "download", torrent, dst, "--port", str(port), "--peer", peer, "--seconds", "900"]


def pair(run, seeder, leecher, torrent, src, size, via=None, label=""):
    # Dirty pages from the previous run would be written back during this one: flush first.
    os.sync()
    sport = h.free_port()
    sp = start_seeder(run, seeder, torrent, src, sport, f"seed-{seeder}-{leecher}{label}.log")
    target = f"127.0.0.1:{sport}"
    relay = None
    if via:
        rport = h.free_port()
        relay = run.spawn([sys.executable, os.path.join(HERE, "delay_relay.py"), "--listen", str(rport), "--target",
                           target, "--delay-ms", str(via)], f"relay{label}.log")
        h.wait_listening(rport)
        target = f"127.0.0.1:{rport}"
    dst = run.path(f"dst-{seeder}-{leecher}{label}")
    os.makedirs(dst)
    rc, wall, cpu, rss = timed(run, leech_argv(run, leecher, torrent, dst, h.free_port(), target),
                               f"leech-{seeder}-{leecher}{label}.log")
    scpu, srss = proc_stats(sp.pid)
    run.stop(sp)
    if relay:
        run.stop(relay)
    ok = rc == 0 and h.same_tree(src, dst, [os.listdir(src)[0]])
    subprocess.run(["rm", "-rf", dst])
    return {"seeder": seeder, "leecher": leecher, "ok": ok, "mbps": size / wall / 1e6 if wall else 0, "wall": wall,
            "leech_cpu": cpu, "leech_rss": rss, "seed_cpu": scpu, "seed_rss": srss}


def row(r):
    return (f"| {r['seeder']} → {r['leecher']} | {r['mbps']:.0f} | {r['wall']:.2f} | {r['seed_cpu']:.2f} | "
            f"{r['leech_cpu']:.2f} | {r['seed_rss']:.0f} | {r['leech_rss']:.0f} | {'yes' if r['ok'] else 'NO'} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=1024, help="MiB")
    ap.add_argument("--leechers", type=int, default=20)
    ap.add_argument("--swarm-size", type=int, default=256, help="MiB for the many-leecher swarm")
    ap.add_argument("--relay-size", type=int, default=128, help="MiB for the 50 ms relay runs")
    ap.add_argument("--skip-swarm", action="store_true")
    ap.add_argument("--skip-relay", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    run = h.Run(args.shoal, "bench")
    try:
        src = run.path("src")
        h.write_random(os.path.join(src, "payload.bin"), args.size << 20, seed=1)
        t = run.path("t.torrent")
        h.shoal_create(run, os.path.join(src, "payload.bin"), t, "--v1", "--piece-size", "1MiB")
        subprocess.run(["cat", os.path.join(src, "payload.bin")], stdout=subprocess.DEVNULL)  # warm cache
        size = args.size << 20
        print(f"## One seeder, one leecher, {args.size} MiB, loopback\n")
        print("| pair | MB/s | wall s | seeder CPU s | leecher CPU s | seeder peak RSS MiB | leecher peak RSS MiB | intact |")
        print("|---|---|---|---|---|---|---|---|")
        results = []
        for _ in range(args.repeat):
            for s_kind, l_kind in [("shoal", "shoal"), ("lt", "lt"), ("lt", "shoal"), ("shoal", "lt")]:
                r = pair(run, s_kind, l_kind, t, src, size)
                results.append(r)
                print(row(r), flush=True)
        print()
        if not args.skip_swarm:
            ssrc = run.path("ssrc")
            h.write_random(os.path.join(ssrc, "swarm.bin"), args.swarm_size << 20, seed=2)
            st = run.path("s.torrent")
            h.shoal_create(run, os.path.join(ssrc, "swarm.bin"), st, "--v1", "--piece-size", "256KiB")
            sport = h.free_port()
            seed = start_seeder(run, "shoal", st, ssrc, sport, "swarm-seed.log")
            start = time.time()
            procs = []
            for i in range(args.leechers):
                d = run.path(f"swarm-{i}")
                os.makedirs(d)
                # Each leecher knows the seeder and the leecher before it, so they trade.
                peers = ["--peer", f"127.0.0.1:{sport}"]
                port = h.free_port()
                if procs:
                    peers += ["--peer", f"127.0.0.1:{procs[-1][2]}"]
                p = run.spawn(TIME + [run.shoal, "download", st, "-d", d, "--port", str(port), "--local",
                                      "--seed-time", "10", "--json-progress", *peers], f"swarm-{i}.log")
                procs.append((p, d, port))
            done_at = []
            for p, d, port in procs:
                p.wait(900)
                summ = h.summary(run, os.path.basename(p.log)) or {}
                done_at.append(summ.get("seconds", 0))
            scpu, srss = proc_stats(seed.pid)
            run.stop(seed)
            ok = all(h.same_tree(ssrc, d, ["swarm.bin"]) for _, d, _ in procs)
            total = time.time() - start
            print(f"## One shoal seeder, {args.leechers} shoal leechers, {args.swarm_size} MiB\n")
            print(f"- all intact: {'yes' if ok else 'NO'}; seeder CPU {scpu:.1f} s, peak RSS {srss:.0f} MiB")
            print(f"- time to complete per leecher: min {min(done_at):.1f} s, median {sorted(done_at)[len(done_at)//2]:.1f} s, "
                  f"max {max(done_at):.1f} s; whole run {total:.1f} s")
            print(f"- aggregate delivered: {args.leechers * args.swarm_size / max(done_at) * 1.048576:.0f} MB/s "
                  f"({args.leechers} x {args.swarm_size} MiB / slowest)\n", flush=True)
        if not args.skip_relay:
            rsrc = run.path("rsrc")
            h.write_random(os.path.join(rsrc, "relay.bin"), args.relay_size << 20, seed=3)
            rt = run.path("r.torrent")
            h.shoal_create(run, os.path.join(rsrc, "relay.bin"), rt, "--v1", "--piece-size", "256KiB")
            print(f"## Two peers through a relay adding 50 ms each way (100 ms RTT), {args.relay_size} MiB\n")
            print("| pair | MB/s | wall s | seeder CPU s | leecher CPU s | seeder peak RSS MiB | leecher peak RSS MiB | intact |")
            print("|---|---|---|---|---|---|---|---|")
            for s_kind, l_kind in [("shoal", "shoal"), ("lt", "lt")]:
                r = pair(run, s_kind, l_kind, rt, rsrc, args.relay_size << 20, via=50, label="-relay")
                print(row(r), flush=True)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
