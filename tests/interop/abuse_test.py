#!/usr/bin/python3
"""Scripted attackers against shoal on loopback: each attack runs against a fresh
`shoal seed` (the magnet one against a `shoal download`), with a normal `shoal download`
beside it. For every attack it asserts that shoal's resident memory grows by less than
100 MB (VmRSS sampled from /proc every 50 ms, against the figure before the attack), that
it uses less than half a core (utime+stime from /proc/PID/stat over the attack's wall
time), and that the normal download completes with the right bytes.

Attacks: BEP 52 hash requests from a peer that never reads; ut_metadata requests; block
requests; 2,000 silent and 2,000 half-handshaked TCP connections; 200 connections that
handshake and sit idle (they fill the torrent's 80 slots); a uTP SYN flood; 16 peers that
claim 64 MiB of metadata to a magnet download; a seeder at its file-descriptor limit.

Usage: abuse_test.py --shoal PATH [--only NAME] [--json]
"""
import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time

import harness as h

RSS_LIMIT_MB = 100
CPU_LIMIT = 0.5
SCRIPTED = os.path.join(h.HERE, "scripted_peer.py")
CLK = os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, IndexError):
        return None


class Meter:
    """Samples a process's RSS while an attack runs; CPU from the start to the end."""

    def __init__(self, pid):
        self.pid = pid
        self.base = rss_kb(pid) or 0
        self.peak = self.base
        self.cpu0 = cpu_seconds(pid) or 0.0
        self.t0 = time.time()
        self.stop_flag = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        while not self.stop_flag:
            r = rss_kb(self.pid)
            c = cpu_seconds(self.pid)
            if r is not None:
                self.peak = max(self.peak, r)
            if c is not None:
                self.cpu1, self.t1 = c, time.time()
            time.sleep(0.05)

    cpu1 = None
    t1 = None

    def stop(self, base_kb=None):
        """base_kb: measure growth from this figure (a fresh process starts near zero)."""
        c = cpu_seconds(self.pid)
        if c is not None:
            self.cpu1, self.t1 = c, time.time()
        self.stop_flag = True
        self.th.join()
        wall = (self.t1 or time.time()) - self.t0
        base = self.base if base_kb is None else base_kb
        return {"rss_base_mb": round(base / 1024, 1), "rss_peak_mb": round(self.peak / 1024, 1),
                "rss_growth_mb": round((self.peak - base) / 1024, 1),
                "cpu_cores": round(((self.cpu1 or self.cpu0) - self.cpu0) / max(wall, 0.001), 3),
                "seconds": round(wall, 1)}


def wait_for(pred, timeout):
    return h.wait_for(pred, timeout, step=0.05)


class Abuse:
    def __init__(self, run, torrent, src, name, info):
        self.run, self.torrent, self.src, self.name, self.info = run, torrent, src, name, info
        self.figures = {}
        self.sha = hashlib.sha256(open(os.path.join(src, name), "rb").read()).hexdigest()

    def seed(self, label, prefix=()):
        port = h.free_port()
        argv = [*prefix, self.run.shoal, "seed", self.torrent, "-d", self.src, "--port", str(port), "--local", "-v"]
        p = self.run.spawn(argv, f"seed-{label}.log")
        ok = h.wait_listening(port)
        # Checking the data is done once the seeder logs nothing new for a moment.
        time.sleep(1.0)
        return p, port, ok

    def attacker(self, label, mode, port, *extra):
        return self.run.spawn([h.PY, SCRIPTED, mode, "--torrent", self.torrent, "--port", str(port), *extra],
                              f"attack-{label}-{mode}-{len(self.run.procs)}.log")

    def normal_download(self, label, seed_port, delay=1.0, timeout=90):
        time.sleep(delay)
        dst = self.run.path(f"dst-{label}")
        rc = h.shoal_download(self.run, self.torrent, dst, h.free_port(), f"normal-{label}.log", "--seed-time", "0",
                              "-v", "--peer", f"127.0.0.1:{seed_port}", timeout=timeout)
        return rc == 0 and h.same_tree(self.src, dst, [self.name]), rc

    def result(self, label, target, m, ok_download, rc, attackers):
        fig = m.stop()
        outs = []
        for a in attackers:
            self.run.stop(a)
            lines = [l for l in open(a.log, "rb").read().decode("utf-8", "replace").splitlines() if l.startswith("{")]
            outs.append(lines[-1] if lines else "")
        fig["attacker"] = outs[:1]
        self.figures[label] = fig
        self.run.check(f"{label}: RSS grows < {RSS_LIMIT_MB} MB", fig["rss_growth_mb"] < RSS_LIMIT_MB, json.dumps(fig))
        self.run.check(f"{label}: CPU < {CPU_LIMIT} core", fig["cpu_cores"] < CPU_LIMIT, json.dumps(fig))
        self.run.check(f"{label}: a normal download beside it completes with the right bytes", ok_download,
                       f"exit {rc}")
        if target.poll() is not None:
            self.run.check(f"{label}: shoal still running", False, f"exit {target.returncode}")
        print(f"{label}: {json.dumps(fig)}", flush=True)

    def flood(self, label, mode, seconds=8, extra=(), dropped_for=None):
        seed, port, _ = self.seed(label)
        m = Meter(seed.pid)
        attackers = [self.attacker(label, mode, port, "--seconds", str(seconds), *extra)]
        ok, rc = self.normal_download(label, port)
        wait_for(lambda: all(a.poll() is not None for a in attackers), seconds + 10)
        self.result(label, seed, m, ok, rc, attackers)
        if dropped_for:
            log = open(seed.log, "rb").read().decode("utf-8", "replace")
            out = self.figures[label]["attacker"][0]
            self.run.check(f"{label}: the peer that never reads is dropped ({dropped_for})",
                           dropped_for in log and '"closed_by_peer": true' in out, out)
        self.run.stop(seed)
        return seed

    def connections(self, label, mode, count, seconds=8):
        seed, port, _ = self.seed(label)
        m = Meter(seed.pid)
        attackers = [self.attacker(label, mode, port, "--count", str(count), "--seconds", str(seconds))]
        ok, rc = self.normal_download(label, port, delay=2.0)
        wait_for(lambda: all(a.poll() is not None for a in attackers), seconds + 20)
        self.result(label, seed, m, ok, rc, attackers)
        self.run.stop(seed)

    def idle_handshakes(self, label, count=200, seconds=35):
        seed, port, _ = self.seed(label)
        m = Meter(seed.pid)
        attackers = [self.attacker(label, "idle_handshake", port, "--count", str(count), "--seconds", str(seconds))]
        # The torrent's slots are all taken first; then a real peer must still get in, while
        # the attack goes on (not once the attacker gives up).
        time.sleep(2.0)
        ok, rc = self.normal_download(label, port, delay=0, timeout=seconds - 10)
        self.result(label, seed, m, ok, rc, attackers)
        log = open(seed.log, "rb").read().decode("utf-8", "replace")
        self.run.check(f"{label}: idle connections were evicted for the real peer", "evicted for a new peer" in log)
        self.run.stop(seed)

    def utp_syn(self, label, count=1000000, seconds=8):
        seed, port, _ = self.seed(label)
        m = Meter(seed.pid)
        attackers = [self.attacker(label, "utp_syn", port, "--count", str(count), "--seconds", str(seconds))]
        ok, rc = self.normal_download(label, port)
        wait_for(lambda: all(a.poll() is not None for a in attackers), seconds + 10)
        self.result(label, seed, m, ok, rc, attackers)
        self.run.stop(seed)

    def magnet(self, label, peers=16, seconds=25, attack_only=1.5):
        # An idle shoal's RSS, for the growth of a fresh process that starts near zero.
        idle, _, _ = self.seed(label + "-idle")
        idle_base = rss_kb(idle.pid) or 0
        self.run.stop(idle)
        fakes, ports = [], []
        for _ in range(peers):
            p = h.free_port()
            ports.append(p)
            fakes.append(self.run.spawn([h.PY, SCRIPTED, "fake_metadata", "--listen-port", str(p), "--seconds",
                                         str(seconds + 30), "--claim", str(64 << 20)],
                                        f"fake-{p}.log"))
        for p in ports:
            h.wait_listening(p)
        link = f"magnet:?xt=urn:btih:{self.info['info_hash_v1']}"
        dst = self.run.path(f"dst-{label}")
        sport = h.free_port()
        argv = [self.run.shoal, "download", link, "-d", dst, "--port", str(h.free_port()), "--local", "-v",
                "--seed-time", "0"]
        for p in ports:
            argv += ["--peer", f"127.0.0.1:{p}"]
        argv += ["--peer", f"127.0.0.1:{sport}"]
        dl = self.run.spawn(argv, f"magnet-{label}.log")
        wait_for(lambda: rss_kb(dl.pid) is not None, 5)
        m = Meter(dl.pid)
        # At first only the fake peers answer (the honest seeder is not up yet, and is
        # asked again after 1 and 2 s): that window is the attack's CPU. The download
        # after it (checking and writing 32 MiB) is work any download does.
        time.sleep(attack_only)
        cpu_attack = ((cpu_seconds(dl.pid) or m.cpu0) - m.cpu0) / max(time.time() - m.t0, 0.001)
        seed = self.run.spawn([self.run.shoal, "seed", self.torrent, "-d", self.src, "--port", str(sport), "--local",
                               "-v"], f"seed-{label}.log")
        try:
            dl.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            pass
        fig = m.stop(base_kb=idle_base)
        fig["cpu_cores_whole_download"] = fig["cpu_cores"]
        fig["cpu_cores"] = round(cpu_attack, 3)
        ok = dl.returncode == 0 and h.same_tree(self.src, dst, [self.name])
        self.figures[label] = fig
        self.run.check(f"{label}: RSS grows < {RSS_LIMIT_MB} MB", fig["rss_growth_mb"] < RSS_LIMIT_MB, json.dumps(fig))
        self.run.check(f"{label}: CPU < {CPU_LIMIT} core while only the fake peers answer",
                       fig["cpu_cores"] < CPU_LIMIT, json.dumps(fig))
        self.run.check(f"{label}: the magnet download completes with the right bytes", ok, f"exit {dl.returncode}")
        print(f"{label}: {json.dumps(fig)}", flush=True)
        for f in fakes:
            self.run.stop(f)
        self.run.stop(seed)

    def fd_limit(self, label, limit=64, seconds=40):
        # Idle handshaked connections take every descriptor (fewer than the torrent's 80
        # slots, so only running out of descriptors can make room for a real peer).
        seed, port, _ = self.seed(label, prefix=("prlimit", f"--nofile={limit}:{limit}"))
        m = Meter(seed.pid)
        attackers = [self.attacker(label, "idle_handshake", port, "--count", str(limit + 40), "--seconds",
                                   str(seconds))]
        time.sleep(1.5)
        # While the descriptors are used up, shoal must not spin on accept.
        spin = Meter(seed.pid)
        time.sleep(3.0)
        spin_fig = spin.stop()
        self.run.check(f"{label}: no accept spin at the limit (CPU < {CPU_LIMIT} core)",
                       spin_fig["cpu_cores"] < CPU_LIMIT, json.dumps(spin_fig))
        ok, rc = self.normal_download(label, port, delay=0, timeout=seconds - 10)
        self.result(label, seed, m, ok, rc, attackers)
        # Encryption still works with no descriptor free: OpenSSL's RC4 is loaded from disk,
        # so a seeder that loaded it on its first encrypted peer (under the attack) refused
        # every encrypted handshake for good, and each dial cost three connections.
        seed_log = open(seed.log, "rb").read().decode("utf-8", "replace")
        normal_log = open(self.run.path(f"normal-{label}.log"), "rb").read().decode("utf-8", "replace")
        self.run.check(f"{label}: the seeder still takes encrypted handshakes",
                       "RC4 is unavailable" not in seed_log and "retrying in plaintext" not in normal_log,
                       "the seeder refused MSE: " + ", ".join(l for l in seed_log.splitlines() if "RC4" in l)[:300])
        self.run.stop(seed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # shoal and the attackers inherit it
    run = h.Run(args.shoal, "abuse")
    try:
        src = run.path("src")
        name = "payload.bin"
        h.write_random(os.path.join(src, name), 32 << 20, seed=11)
        t = run.path("t.torrent")
        info = h.shoal_create(run, os.path.join(src, name), t, "--piece-size", "64KiB")  # hybrid
        a = Abuse(run, t, src, name, info)
        attacks = {
            # 24 s: the send queue stays full, so after 20 s the flooder is dropped.
            "hash_flood": lambda: a.flood("hash_flood", "hash_flood", seconds=24, extra=("--v2",),
                                          dropped_for="send queue full"),
            "metadata_flood": lambda: a.flood("metadata_flood", "metadata_flood"),
            "request_flood": lambda: a.flood("request_flood", "request_flood"),
            "silent_2000": lambda: a.connections("silent_2000", "silent", 2000),
            "half_handshake_2000": lambda: a.connections("half_handshake_2000", "half_handshake", 2000),
            "idle_handshake_200": lambda: a.idle_handshakes("idle_handshake_200"),
            "utp_syn_flood": lambda: a.utp_syn("utp_syn_flood"),  # for 8 s, as fast as Python sends
            "magnet_64mib_claims": lambda: a.magnet("magnet_64mib_claims"),
            "fd_limit": lambda: a.fd_limit("fd_limit"),
        }
        for label, fn in attacks.items():
            if args.only and label not in args.only:
                continue
            t0 = time.time()
            fn()
            print(f"{label}: {time.time() - t0:.1f} s of test time", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(a.figures, f, indent=1)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
