#!/usr/bin/python3
"""Downloads between shoal and Transmission 3.00, both ways, through opentracker; and
a magnet link (BEP 9 metadata from Transmission) for a v1 torrent. Transmission 3.00 cannot
load hybrid torrents at all ("Error parsing .torrent file", libtorrent's as well as
shoal's), so the hybrid magnet case runs against libtorrent only (magnet_test.py).

Transmission never talks to peers on 127.0.0.0/8, so the test builds two network
namespaces joined by a veth pair (10.77.N.1 for Transmission, 10.77.N.2 for shoal and
the tracker) and runs each side inside its own. Transmission runs with encryption
"tolerated" (-et), uTP, DHT, LPD and port mapping off. Needs root.

Usage: transmission_test.py --shoal PATH [--size MiB]
"""
import argparse
import os
import re
import subprocess
import time

import harness as h


class Netns:
    def __init__(self):
        n = os.getpid() % 200 + 20
        self.a, self.b = f"shoal-ta{n}", f"shoal-tb{n}"
        self.ip_a, self.ip_b = f"10.77.{n}.1", f"10.77.{n}.2"
        self.cleanup()
        cmds = [
            ["ip", "netns", "add", self.a], ["ip", "netns", "add", self.b],
            ["ip", "link", "add", f"v{n}a", "type", "veth", "peer", "name", f"v{n}b"],
            ["ip", "link", "set", f"v{n}a", "netns", self.a], ["ip", "link", "set", f"v{n}b", "netns", self.b],
            ["ip", "-n", self.a, "addr", "add", f"{self.ip_a}/24", "dev", f"v{n}a"],
            ["ip", "-n", self.b, "addr", "add", f"{self.ip_b}/24", "dev", f"v{n}b"],
            ["ip", "-n", self.a, "link", "set", f"v{n}a", "up"], ["ip", "-n", self.b, "link", "set", f"v{n}b", "up"],
            ["ip", "-n", self.a, "link", "set", "lo", "up"], ["ip", "-n", self.b, "link", "set", "lo", "up"],
        ]
        for c in cmds:
            subprocess.run(c, check=True)

    def cleanup(self):
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def exec(self, ns):
        return ["ip", "netns", "exec", ns]


def start_transmission(run, net, name, download_dir):
    cfg = run.path(f"tr-{name}")
    os.makedirs(cfg)
    rpc = h.free_port()
    p = run.spawn(net.exec(net.a) + ["transmission-daemon", "-f", "-g", cfg, "-p", str(rpc), "-T", "-et", "-O", "-Y",
                                     "-M", "--no-utp", "-P", str(h.free_port()), "-w", download_dir, "--log-error"],
                  f"transmission-{name}.log")
    remote = net.exec(net.a) + ["transmission-remote", f"127.0.0.1:{rpc}"]
    deadline = time.time() + 20
    while time.time() < deadline:
        if subprocess.run(remote + ["-l"], capture_output=True).returncode == 0:
            return p, remote
        time.sleep(0.2)
    raise RuntimeError("transmission-daemon did not start")


def percent_done(remote):
    out = subprocess.run(remote + ["-t", "all", "-i"], capture_output=True, text=True).stdout
    m = re.search(r"Percent Done:\s*([\d.]+)%", out)
    return float(m.group(1)) if m else -1.0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    run = h.Run(args.shoal, "transmission")
    net = None
    try:
        net = Netns()
        os.chmod(run.dir, 0o755)
        src = run.path("src")
        name = "payload.bin"
        h.write_random(os.path.join(src, name), args.size << 20, seed=11)
        # opentracker on shoal's side.
        tport = h.free_port()
        probe = h.shoal_create(run, os.path.join(src, name), run.path("probe.torrent"), "--v1")
        wl = run.path("whitelist.txt")
        open(wl, "w").write(probe["info_hash_v1"] + "\n")
        os.chmod(wl, 0o644)
        run.spawn(net.exec(net.b) + ["opentracker", "-i", net.ip_b, "-p", str(tport), "-P", str(tport), "-w", wl,
                                      "-u", "nobody", "-d", "/"], "opentracker.log")
        t = run.path("t.torrent")
        announce = f"http://{net.ip_b}:{tport}/announce"
        h.shoal_create(run, os.path.join(src, name), t, "--v1", "-t", announce)
        time.sleep(0.5)

        # 1. Transmission seeds, shoal downloads.
        tr, remote = start_transmission(run, net, "seed", src)
        subprocess.run(remote + ["-a", t], check=True, capture_output=True)
        deadline = time.time() + 60
        while time.time() < deadline and percent_done(remote)[0] < 100:
            time.sleep(0.5)
        run.check("Transmission verified its copy (seeding)", percent_done(remote)[0] == 100, percent_done(remote)[1])
        dst = run.path("shoal-dst")
        os.makedirs(dst)
        start = time.time()
        with open(run.path("shoal-leech.log"), "wb") as f:
            rc = subprocess.run(net.exec(net.b) + [run.shoal, "download", t, "-d", dst, "--port", str(h.free_port()),
                                                   "--seed-time", "0", "-v"], stdout=f, stderr=subprocess.STDOUT,
                                timeout=240).returncode
        run.check(f"Transmission -> shoal: shoal exits 0 ({time.time() - start:.1f} s)", rc == 0, f"exit {rc}")
        run.check("Transmission -> shoal: bytes identical", h.same_tree(src, dst, [name]))

        # 1b. A magnet link: the metadata comes from Transmission (BEP 9). A fresh Transmission:
        # it keys what it knows of peers by address alone, so the first download, finished
        # from the same address, would make it take the new leecher for a seed and never
        # unchoke it.
        run.stop(tr)
        tr, remote = start_transmission(run, net, "seed2", src)
        subprocess.run(remote + ["-a", t], check=True, capture_output=True)
        deadline = time.time() + 60
        while time.time() < deadline and percent_done(remote)[0] < 100:
            time.sleep(0.5)
        for label, info in [("v1", probe)]:
            link = f"magnet:?xt=urn:btih:{info['info_hash_v1']}&dn={name}&tr={announce}"
            mdst = run.path(f"shoal-magnet-{label}")
            os.makedirs(mdst)
            start = time.time()
            with open(run.path(f"shoal-magnet-{label}.log"), "wb") as f:
                rc = subprocess.run(net.exec(net.b) + [run.shoal, "download", link, "-d", mdst, "--port",
                                                       str(h.free_port()), "--seed-time", "0", "--no-dht",
                                                       "--stop-timeout", "90", "-v"],
                                    stdout=f, stderr=subprocess.STDOUT, timeout=240).returncode
            log = open(run.path(f"shoal-magnet-{label}.log"), "rb").read().decode("utf-8", "replace")
            run.check(f"{label} magnet: metadata and data from Transmission ({time.time() - start:.1f} s)", rc == 0,
                      f"exit {rc}: {log[-500:]}")
            run.check(f"{label} magnet from Transmission: bytes identical", h.same_tree(src, mdst, [name]))
            run.check(f"{label} magnet from Transmission: the metadata came over ut_metadata",
                      os.path.exists(os.path.join(mdst, ".shoal", info["info_hash_v1"] + ".torrent")))
        run.stop(tr)

        # 2. shoal seeds, Transmission downloads.
        sport = h.free_port()
        seed = run.spawn(net.exec(net.b) + [run.shoal, "seed", t, "-d", src, "--port", str(sport), "-v"],
                         "shoal-seed.log")
        time.sleep(1)
        tdst = run.path("tr-dst")
        os.makedirs(tdst)
        tr2, remote2 = start_transmission(run, net, "leech", tdst)
        subprocess.run(remote2 + ["-a", t], check=True, capture_output=True)
        start = time.time()
        deadline = time.time() + 240
        while time.time() < deadline and percent_done(remote2)[0] < 100:
            # Ask for a fresh announce now and then, so it finds the seeder quickly.
            subprocess.run(remote2 + ["-t", "all", "--reannounce"], capture_output=True)
            time.sleep(1)
        pct, info = percent_done(remote2)
        run.check(f"shoal -> Transmission: Transmission completes ({time.time() - start:.1f} s)", pct == 100, info[-600:])
        run.check("shoal -> Transmission: bytes identical", h.same_tree(src, tdst, [name]))
        run.stop(tr2)
        run.stop(seed)
    finally:
        code = run.finish()
        if net:
            net.cleanup()
    return code


if __name__ == "__main__":
    h.main_guard(main)
