#!/usr/bin/python3
"""Local Service Discovery (BEP 14): two shoal instances in separate network namespaces on
one bridge find each other with no tracker and no DHT, and the download completes; a
multicast listener on the bridge hears a public torrent announced and never a private one.
Needs root (it builds the namespaces).

Usage: lsd_test.py --shoal PATH
"""
import argparse
import os
import socket
import struct
import subprocess
import time

import harness as h


class Bridge:
    """Namespaces a and b, each with a veth into a bridge living in namespace br."""

    def __init__(self):
        n = os.getpid() % 200 + 20
        self.n = n
        self.br, self.a, self.b = f"shoal-lbr{n}", f"shoal-la{n}", f"shoal-lb{n}"
        self.ip_a, self.ip_b = f"10.78.{n}.1", f"10.78.{n}.2"
        self.cleanup()
        run = lambda *c: subprocess.run(list(c), check=True)  # noqa: E731
        for ns in (self.br, self.a, self.b):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.br, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.br, "link", "set", "br0", "up")
        for ns, addr, tag in ((self.a, self.ip_a, "a"), (self.b, self.ip_b, "b")):
            inner, outer = f"l{n}{tag}", f"l{n}{tag}p"
            run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            run("ip", "link", "set", inner, "netns", ns)
            run("ip", "link", "set", outer, "netns", self.br)
            run("ip", "-n", self.br, "link", "set", outer, "master", "br0")
            run("ip", "-n", self.br, "link", "set", outer, "up")
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", inner)
            run("ip", "-n", ns, "link", "set", inner, "up")
            # A LAN host has a default route; multicast needs one to leave.
            run("ip", "-n", ns, "route", "add", "default", "dev", inner)

    def cleanup(self):
        for ns in (self.br, self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def exec(self, ns):
        return ["ip", "netns", "exec", ns]


LISTENER = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 6771))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton("239.192.152.143"), socket.inet_aton("0.0.0.0")))
s.settimeout(0.5)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        data, src = s.recvfrom(4096)
        print(src[0], data.decode("latin-1").replace("\r\n", "|"), flush=True)
    except socket.timeout:
        pass
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "lsd")
    net = None
    try:
        net = Bridge()
        os.chmod(run.dir, 0o755)
        src = run.path("src")
        h.write_random(os.path.join(src, "local.bin"), 4 << 20, seed=77)
        t = run.path("t.torrent")
        info = h.shoal_create(run, os.path.join(src, "local.bin"), t, "--v1")  # no tracker
        tp = run.path("p.torrent")
        pinfo = h.shoal_create(run, os.path.join(src, "local.bin"), tp, "--v1", "--private")

        listener = run.spawn(net.exec(net.b) + ["/usr/bin/python3", "-c", LISTENER, "25"], "listener.log")
        time.sleep(0.5)
        # The seeder knows no tracker, no DHT node and no peer.
        seed = run.spawn(net.exec(net.a) + [run.shoal, "seed", t, "-d", src, "--port", "6881", "--no-dht", "-v"],
                         "seed.log")
        pseed = run.spawn(net.exec(net.a) + [run.shoal, "seed", tp, "-d", src, "--port", "6882", "--no-dht", "-v"],
                          "seed-private.log")
        time.sleep(1)
        dst = run.path("dst")
        os.makedirs(dst)
        start = time.time()
        with open(run.path("leech.log"), "wb") as f:
            rc = subprocess.run(net.exec(net.b) + [run.shoal, "download", t, "-d", dst, "--port", "6881", "--no-dht",
                                                   "--seed-time", "0", "--stop-timeout", "60", "-v"],
                                stdout=f, stderr=subprocess.STDOUT, timeout=120).returncode
        log = open(run.path("leech.log"), "rb").read().decode("utf-8", "replace")
        run.check(f"LSD: the leecher finds the seeder with no tracker and no DHT ({time.time() - start:.1f} s)",
                  rc == 0, f"exit {rc}: {log[-500:]}")
        run.check("LSD: bytes identical", h.same_tree(src, dst, ["local.bin"]))
        # Whichever side heard the other first dialled it.
        seed_log = open(run.path("seed.log"), "rb").read().decode("utf-8", "replace")
        run.check("LSD: the peer came from a multicast announce",
                  f"lsd: peer {net.ip_a}:6881" in log or f"lsd: peer {net.ip_b}:6881" in seed_log, log[-300:])
        listener.wait(40)
        heard = open(run.path("listener.log")).read()
        run.check("a LAN listener hears the public torrent announced",
                  info["info_hash_v1"] in heard.lower() and "Port: 6881" in heard, heard[-300:])
        # The private seeder must have been alive the whole time, or its silence proves nothing.
        run.check("the private torrent's seeder was running throughout", pseed.poll() is None,
                  f"exit {pseed.returncode}")
        run.check("a LAN listener never hears the private torrent", pinfo["info_hash_v1"] not in heard.lower(),
                  heard[-300:])
        run.stop(seed)
        run.stop(pseed)
    finally:
        code = run.finish()
        if net:
            net.cleanup()
    return code


if __name__ == "__main__":
    h.main_guard(main)
