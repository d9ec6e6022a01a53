#!/usr/bin/python3
"""--local holds for every connection and every name lookup, trackers and web seeds too.

A network namespace made by the test, whose only way out is one interface d0 (default
route through it, IPv6 off on it, a resolv.conf naming a DNS server reachable only through
it): whatever shoal sends anywhere but loopback (an ARP request for the gateway included)
is counted in d0's tx counters. d0 is a dummy device where the kernel has the driver, else
one end of a veth pair whose other end sits, unaddressed, in a second namespace made by the
test (a sink: nothing there answers or forwards). Inside, a shoal seeder on 127.0.0.1 and a shoal leecher with
--local and a torrent that also lists public trackers (http and udp, address literals and
names) and public web seeds (literal and name).

LSD is turned off on both peers: under --local shoal still runs it inside a network
namespace on purpose (lsd::in_network_namespace, for the LSD tests), and its multicast
would leave through d0; it is not what this test is about.

Checks: the download completes from the loopback seeder; every public tracker and web seed
is skipped with a clear line ("skipped under --local"); d0 sent nothing, so no packet and no
DNS query left. The control: the same leecher without --local (and without SHOAL_LOCAL)
does send through d0 for a few seconds (trackers, web seeds, DNS), so the probe can see
what it is looking for.

Needs root (ip netns). Usage: local_test.py --shoal PATH
"""
import argparse
import json
import os
import shutil
import subprocess
import time

import bencoding
import harness as h

PUBLIC_TRACKERS = [
    "http://203.0.113.5:6969/announce",
    "udp://198.51.100.7:6969/announce",
    "http://tracker.example.com/announce",
    "udp://tracker.example.net:1337/announce",
    "http://[2001:db8::7]:8080/announce",
]
PUBLIC_WEB_SEEDS = ["http://192.0.2.10/files/", "http://webseed.example.org/files/"]


def sh(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


class Namespace:
    def __init__(self):
        self.name = f"shoal-local-{os.getpid()}"
        self.sink = f"shoal-sink-{os.getpid()}"
        self.etc = f"/etc/netns/{self.name}"
        sh("ip", "netns", "add", self.name)
        sh("ip", "netns", "add", self.sink)
        try:
            self.ex("ip", "link", "set", "lo", "up")
            # IPv6 off on d0 before it exists, so no router solicitation or DAD packet is
            # counted; loopback keeps ::1.
            self.ex("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            sh("ip", "netns", "exec", self.sink, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            if self.ex("ip", "link", "add", "d0", "type", "dummy", check=False).returncode == 0:
                self.kind = "dummy"
            else:
                self.ex("ip", "link", "add", "d0", "type", "veth", "peer", "name", "s0", "netns", self.sink)
                sh("ip", "-n", self.sink, "link", "set", "s0", "up")
                self.kind = "veth to a sink namespace"
            self.ex("ip", "link", "set", "d0", "up")
            self.ex("ip", "addr", "add", "10.99.0.1/24", "dev", "d0")
            self.ex("ip", "route", "add", "default", "via", "10.99.0.254", "dev", "d0")
            # `ip netns exec` bind-mounts this over /etc/resolv.conf: a DNS query would leave
            # through d0.
            os.makedirs(self.etc, exist_ok=True)
            with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
                f.write("nameserver 192.0.2.53\noptions timeout:1 attempts:1\n")
        except Exception:
            self.cleanup()
            raise

    def ex(self, *argv, check=True):
        return sh("ip", "netns", "exec", self.name, *argv, check=check)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def tx(self):
        """(packets, bytes) d0 has sent."""
        out = sh("ip", "-n", self.name, "-s", "-j", "link", "show", "d0").stdout
        st = json.loads(out)[0]["stats64"]["tx"]
        return st["packets"], st["bytes"]

    def cleanup(self):
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", self.sink], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.etc, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    if not h.require_root("ip netns"):
        return 1
    run = h.Run(args.shoal, "local")
    ns = Namespace()
    print(f"d0 is a {ns.kind}", flush=True)
    try:
        src = run.path("src")
        h.write_random(os.path.join(src, "payload.bin"), 2 << 20, seed=3)
        plain = run.path("plain.torrent")
        h.shoal_create(run, os.path.join(src, "payload.bin"), plain, "--v1")
        with open(plain, "rb") as f:
            t = bencoding.decode(f.read())
        # Outside the info dictionary: the same torrent, now with public trackers and seeds.
        t[b"announce"] = PUBLIC_TRACKERS[0].encode()
        t[b"announce-list"] = [[u.encode()] for u in PUBLIC_TRACKERS]
        t[b"url-list"] = [u.encode() for u in PUBLIC_WEB_SEEDS]
        torrent = run.path("public.torrent")
        with open(torrent, "wb") as f:
            f.write(bencoding.encode(t))

        env = dict(os.environ, SHOAL_LOCAL="1")
        sport = h.free_port()
        seed = run.spawn(ns.prefix() + [run.shoal, "seed", plain, "-d", src, "--port", str(sport), "--local", "--no-lsd"],
                         "seed.log", env=env)
        deadline = time.time() + 20
        while time.time() < deadline and ns.ex("ss", "-ltnH", f"sport = :{sport}", check=False).stdout.strip() == "":
            time.sleep(0.1)
        time.sleep(0.5)
        tx0 = ns.tx()
        dst = run.path("dst")
        os.makedirs(dst)
        log = run.path("leech.log")
        with open(log, "wb") as f:
            p = subprocess.run(ns.prefix() + [run.shoal, "download", torrent, "-d", dst, "--port",
                                              str(h.free_port()), "--local", "--no-lsd", "-v", "--seed-time", "0",
                                              "--peer", f"127.0.0.1:{sport}", "--stop-timeout", "10"],
                               stdout=f, stderr=subprocess.STDOUT, timeout=120, env=env)
        tx1 = ns.tx()
        text = open(log, "rb").read().decode("utf-8", "replace")
        tail = "\n".join(text.splitlines()[-12:])
        run.check("the download completes from the loopback seeder",
                  p.returncode == 0 and h.same_tree(src, dst, ["payload.bin"]), f"exit {p.returncode}\n{tail}")
        run.check("nothing left through d0 under --local (no packet, no DNS query)", tx1 == tx0,
                  f"tx before {tx0}, after {tx1}")
        skipped = [l for l in text.splitlines() if "skipped under --local" in l]
        for seed_url in PUBLIC_WEB_SEEDS:
            run.check(f"web seed {seed_url} skipped with a clear line",
                      any(seed_url in l and "web seed" in l for l in skipped), "\n".join(skipped) or tail)
        run.check("the public trackers are reported as skipped under --local",
                  any("tracker" in l and "skipped under --local" in l for l in text.splitlines()),
                  "\n".join(skipped) or tail)
        run.check("no tracker line shows a query (peer_id, key)",
                  not any("tracker" in l and ("peer_id=" in l or "key=" in l) for l in text.splitlines()), tail)
        run.stop(seed)

        # Control: without --local the same leecher does send through d0, so the probe works.
        env_off = {k: v for k, v in os.environ.items() if k != "SHOAL_LOCAL"}
        dst2 = run.path("dst-control")
        os.makedirs(dst2)
        c0 = ns.tx()
        ctl = run.spawn(ns.prefix() + [run.shoal, "download", torrent, "-d", dst2, "--port", str(h.free_port()),
                                       "--no-dht", "--no-lsd", "--no-port-mapping", "-v"], "control.log", env=env_off)
        deadline = time.time() + 15
        while time.time() < deadline and ns.tx() == c0:
            time.sleep(0.2)
        c1 = ns.tx()
        run.stop(ctl)
        run.check("control: without --local, packets do leave through d0 (the probe sees them)", c1[0] > c0[0],
                  f"tx before {c0}, after {c1}")
    finally:
        code = run.finish()
        ns.cleanup()
    return code


if __name__ == "__main__":
    h.main_guard(main)
