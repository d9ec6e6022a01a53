#!/usr/bin/python3
"""The mainline DHT on loopback: 20 shoal nodes and 3 libtorrent nodes in one network.

- a magnet link with no tracker and no x.pe downloads in shoal from a libtorrent seeder
  found through the DHT, and libtorrent finds a shoal seeder the same way;
- BEP 44: items put by shoal are read by libtorrent (immutable and mutable with salt) and
  the reverse;
- a private torrent sends nothing to the DHT (a recording node hears no packet), while a
  public one does;
- the routing table and node id persist between runs.

Usage: dht_test.py --shoal PATH
"""
import argparse
import json
import os
import re
import socket
import subprocess
import time

import harness as h

LT_DHT = os.path.join(h.HERE, "lt_dht.py")
N_SHOAL = 20
N_LT = 3


def last_stats(run, log):
    for line in reversed(open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()):
        if line.startswith("{") and '"event":"stats"' in line:
            return json.loads(line)
    return {}


def listening(run, log, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines():
            if line.startswith("{") and '"event":"listening"' in line:
                return json.loads(line)
        time.sleep(0.05)
    return None


def run_cmd(argv, timeout=60):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(argv, "timeout", e.stdout or "", e.stderr or "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "dht")
    try:
        # --- the network ---------------------------------------------------------------
        ports = []
        for i in range(N_SHOAL):
            port = h.free_port()
            argv = [run.shoal, "dht", "node", "--port", str(port), "--local", "--json",
                    "--state", run.path(f"node{i}.state")]
            # Each node knows one earlier node (the first knows nobody yet), over IPv4 and,
            # for its IPv6 twin (BEP 32), over ::1.
            if ports:
                argv += ["--dht-bootstrap", f"127.0.0.1:{ports[i // 2]}", "--dht-bootstrap", f"[::1]:{ports[i // 2]}"]
            run.spawn(argv, f"node{i}.log")
            if not listening(run, f"node{i}.log"):
                raise RuntimeError(f"shoal dht node {i} did not start")
            ports.append(port)
        boot = lambda i: f"127.0.0.1:{ports[i % N_SHOAL]}"  # noqa: E731
        lt_ports = []
        for i in range(N_LT):
            port = h.free_port()
            run.spawn([h.PY, LT_DHT, "node", "--port", str(port), "--bootstrap", boot(3 + i), "--seconds", "400"],
                      f"lt-node{i}.log")
            lt_ports.append(port)
        # Tables fill at the machine's pace: poll to a deadline instead of a fixed sleep.
        def tables_full():
            t4 = [last_stats(run, f"node{i}.log").get("nodes", 0) for i in range(N_SHOAL)]
            t6 = [last_stats(run, f"node{i}.log").get("nodes6", 0) for i in range(N_SHOAL)]
            return min(t4) >= 5 and min(t6) >= 3
        h.wait_for(tables_full, 60, step=0.5)
        tables = [last_stats(run, f"node{i}.log").get("nodes", 0) for i in range(N_SHOAL)]
        run.check(f"every shoal node has a routing table ({min(tables)}..{max(tables)} nodes)",
                  min(tables) >= 5, str(tables))
        tables6 = [last_stats(run, f"node{i}.log").get("nodes6", 0) for i in range(N_SHOAL)]
        run.check(f"BEP 32: every shoal node has an IPv6 routing table too ({min(tables6)}..{max(tables6)} nodes)",
                  min(tables6) >= 3, str(tables6))

        # --- BEP 32: an announce reaches the IPv6 side; an IPv6-only node finds it -------
        ih6 = "6a" * 20
        r = run_cmd([run.shoal, "dht", "get-peers", ih6, "--announce", "5555", "--local",
                     "--dht-bootstrap", boot(5), "--dht-bootstrap", f"[::1]:{ports[6]}"])
        # A lookup can miss on a busy machine (a reply lost to a timeout): up to three tries,
        # each from a different entry point.
        peers6 = []
        for attempt in range(3):
            r = run_cmd([run.shoal, "dht", "get-peers", ih6, "--bind", "::", "--local", "--json",
                         "--dht-bootstrap", f"[::1]:{ports[(14 + attempt) % N_SHOAL]}"])
            peers6 = json.loads(r.stdout).get("peers", []) if r.returncode == 0 else []
            if peers6:
                break
        run.check("BEP 32: an IPv6-only lookup finds the peer announced over both families",
                  "[::1]:5555" in peers6, f"{r.returncode} {peers6} {r.stderr[-300:]}")

        # --- magnet, DHT only: libtorrent seeds, shoal downloads -----------------------
        src = run.path("src")
        h.write_random(os.path.join(src, "a", "one.bin"), 3 << 20, seed=41)
        h.write_random(os.path.join(src, "a", "two.bin"), 777777, seed=42)
        t_a = run.path("a.torrent")
        info_a = h.shoal_create(run, os.path.join(src, "a"), t_a, "--v1", "--piece-size", "64KiB")
        lt_seed_port = h.free_port()
        lt_seed = h.lt_peer(run, "seed", t_a, src, lt_seed_port, "lt-seed.log", seconds=300,
                            dht_bootstrap=[boot(7)])
        h.wait_listening(lt_seed_port)
        link = f"magnet:?xt=urn:btih:{info_a['info_hash_v1']}&dn=a"
        dst = run.path("shoal-dl")
        t0 = time.time()
        rc = h.shoal_download(run, link, dst, h.free_port(), "shoal-dl.log", "--seed-time", "0",
                              "--stop-timeout", "90", "--dht-bootstrap", boot(11), "-v")
        took = time.time() - t0
        log = open(run.path("shoal-dl.log"), "rb").read().decode("utf-8", "replace")
        run.check(f"magnet with no tracker and no x.pe: libtorrent -> shoal over the DHT ({took:.1f} s)",
                  rc == 0, f"exit {rc}: {log[-600:]}")
        run.check("DHT magnet download: bytes identical",
                  h.same_tree(src, dst, ["a/one.bin", "a/two.bin"]))
        found = [int(n) for n in re.findall(r"dht: (\d+) peers found", log)]
        run.check("DHT magnet download: the peers came from the DHT lookup", any(n > 0 for n in found), str(found))
        run.stop(lt_seed)

        # --- shoal seeds, libtorrent finds it on the DHT -------------------------------
        h.write_random(os.path.join(src, "b.bin"), 2 << 20, seed=43)
        t_b = run.path("b.torrent")
        info_b = h.shoal_create(run, os.path.join(src, "b.bin"), t_b, "--hybrid", "--piece-size", "32KiB")
        seed_port = h.free_port()
        seeder = h.shoal_seed(run, t_b, src, seed_port, "shoal-seed.log", "--dht-bootstrap", boot(13), "-v")
        h.wait_listening(seed_port)
        # libtorrent looks a magnet up once when it starts and then only every 15 minutes, so it
        # starts after the seeder's announce is on the DHT, not after a fixed sleep: another node's
        # get-peers must see the seeder first.
        run.check("shoal dht get-peers finds the seeder",
                  h.wait_dht_peer(run, info_b["info_hash_v1"], f"127.0.0.1:{seed_port}", boot(17)))
        lt_dst = run.path("lt-dl")
        lt_dl = h.lt_peer(run, "download", f"magnet:?xt=urn:btih:{info_b['info_hash_v1']}&dn=b.bin", lt_dst,
                          h.free_port(), "lt-dl.log", seconds=120, dht_bootstrap=[f"127.0.0.1:{lt_ports[0]}"])
        rc, lines = h.lt_result(lt_dl, timeout=150)
        run.check("hybrid magnet: shoal -> libtorrent over the DHT", rc == 0, str(lines[-2:]))
        run.check("DHT: libtorrent's copy is byte-identical", h.same_tree(src, lt_dst, ["b.bin"]))
        run.stop(seeder)

        # --- BEP 44 both ways -------------------------------------------------------------
        r = run_cmd([run.shoal, "dht", "put", "hello from shoal", "--local", "--json", "--dht-bootstrap", boot(2)])
        target = json.loads(r.stdout)["target"] if r.returncode == 0 else ""
        run.check("BEP 44: shoal puts an immutable item", bool(target), r.stderr[-300:])
        p = run.spawn([h.PY, LT_DHT, "get-immutable", target, "--port", str(h.free_port()),
                       "--bootstrap", boot(9), "--seconds", "30"], "lt-get-imm.log")
        rc, lines = h.lt_result(p, timeout=40)
        run.check("BEP 44: libtorrent reads shoal's immutable item",
                  rc == 0 and lines and lines[-1].get("value") == "hello from shoal", str(lines[-1:]))

        seed_hex = "5a" * 32
        r = run_cmd([run.shoal, "dht", "put", "shoal mutable v1", "--key-seed", seed_hex, "--salt", "chan",
                     "--local", "--json", "--dht-bootstrap", boot(4)])
        pub = json.loads(r.stdout)["public_key"] if r.returncode == 0 else ""
        r = run_cmd([run.shoal, "dht", "put", "shoal mutable v2", "--key-seed", seed_hex, "--salt", "chan",
                     "--local", "--json", "--dht-bootstrap", boot(5)])
        run.check("BEP 44: shoal puts a mutable item twice", r.returncode == 0 and bool(pub), r.stderr[-300:])
        p = run.spawn([h.PY, LT_DHT, "get-mutable", pub, "--salt", "chan", "--port", str(h.free_port()),
                       "--bootstrap", boot(15), "--seconds", "30"], "lt-get-mut.log")
        rc, lines = h.lt_result(p, timeout=40)
        run.check("BEP 44: libtorrent reads shoal's mutable item, newest version (seq 2)",
                  rc == 0 and lines and lines[-1].get("value") == "shoal mutable v2" and lines[-1].get("seq") == 2,
                  str(lines[-1:]))

        p = run.spawn([h.PY, LT_DHT, "put-immutable", "hello from libtorrent", "--port", str(h.free_port()),
                       "--bootstrap", boot(6), "--seconds", "30"], "lt-put-imm.log")
        rc, lines = h.lt_result(p, timeout=40)
        lt_target = lines[-1].get("target", "") if lines else ""
        run.check("BEP 44: libtorrent puts an immutable item", rc == 0 and lt_target, str(lines[-1:]))
        r = run_cmd([run.shoal, "dht", "get", lt_target, "--local", "--json", "--dht-bootstrap", boot(19)])
        got = json.loads(r.stdout) if r.returncode == 0 else {}
        run.check("BEP 44: shoal reads libtorrent's immutable item", got.get("value") == "hello from libtorrent",
                  f"{r.returncode} {r.stdout} {r.stderr[-300:]}")

        lt_seed_hex = "6b" * 32
        p = run.spawn([h.PY, LT_DHT, "put-mutable", "libtorrent mutable", "--seed", lt_seed_hex, "--salt", "s",
                       "--port", str(h.free_port()), "--bootstrap", boot(8), "--seconds", "30"], "lt-put-mut.log")
        rc, lines = h.lt_result(p, timeout=40)
        lt_pub = next((l["public_key"] for l in lines if "public_key" in l), "")
        run.check("BEP 44: libtorrent puts a mutable item", rc == 0 and lt_pub, str(lines[-1:]))
        r = run_cmd([run.shoal, "dht", "get", "--public-key", lt_pub, "--salt", "s", "--local", "--json",
                     "--dht-bootstrap", boot(12)])
        got = json.loads(r.stdout) if r.returncode == 0 else {}
        run.check("BEP 44: shoal reads libtorrent's mutable item (signature checked)",
                  got.get("value") == "libtorrent mutable" and got.get("seq") == 1, f"{r.stdout} {r.stderr[-300:]}")

        # --- private torrents stay off the DHT ----------------------------------------
        # A recording "node": every datagram a shoal seeder sends to its bootstrap lands here.
        for private in (True, False):
            rec = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rec.bind(("127.0.0.1", 0))
            rec.settimeout(0.2)
            t_p = run.path(f"p{int(private)}.torrent")
            h.shoal_create(run, os.path.join(src, "b.bin"), t_p, "--v1",
                           *(["--private"] if private else []), "-t", "http://127.0.0.1:9/announce")
            port = h.free_port()
            s = h.shoal_seed(run, t_p, src, port, f"seed-private-{private}.log",
                             "--dht-bootstrap", f"127.0.0.1:{rec.getsockname()[1]}")
            listening_ok = h.wait_listening(port)
            got = 0
            deadline = time.time() + 4
            while time.time() < deadline:
                try:
                    rec.recvfrom(2048)
                    got += 1
                except socket.timeout:
                    pass
            alive = s.poll() is None
            run.stop(s)
            rec.close()
            if private:
                # Silence from a seeder that died or never started would prove nothing.
                run.check("private torrent: the seeder was up and listening all along", listening_ok and alive,
                          f"listening {listening_ok}, exit {s.returncode if not alive else None}")
                run.check("private torrent: not one DHT packet sent", got == 0, f"{got} datagrams")
            else:
                run.check("public torrent (control): the same setup does reach the DHT", got > 0, f"{got} datagrams")

        # --- persistence ----------------------------------------------------------------
        st = run.path("persist.state")
        argv = [run.shoal, "dht", "node", "--port", "0", "--local", "--json", "--state", st,
                "--dht-bootstrap", boot(1)]
        p1 = run.spawn(argv, "persist1.log")
        first = listening(run, "persist1.log")
        # Stopped once it has a table worth saving (a busy machine bootstraps slower).
        h.wait_for(lambda: last_stats(run, "persist1.log").get("nodes", 0) >= 8, 40, step=0.5)
        nodes1 = last_stats(run, "persist1.log").get("nodes", 0)
        run.stop(p1)
        p2 = run.spawn([a for a in argv if not a.startswith("--dht-bootstrap") and a != boot(1)], "persist2.log")
        second = listening(run, "persist2.log")
        # What it rejoins is what it saved: at least 5 nodes, or all it had when a loaded
        # machine left it fewer before the stop.
        want = min(5, nodes1)
        h.wait_for(lambda: last_stats(run, "persist2.log").get("nodes", 0) >= want, 40, step=0.5)
        nodes2 = last_stats(run, "persist2.log").get("nodes", 0)
        run.stop(p2)
        run.check("the node id survives a restart", first and second and first["id"] == second["id"],
                  f"{first} {second}")
        run.check(f"the routing table survives a restart (rejoined with no bootstrap: {nodes2} nodes, "
                  f"{nodes1} before)", nodes1 > 0 and nodes2 >= want)
    finally:
        rc = run.finish()
    return rc


if __name__ == "__main__":
    h.main_guard(main)
