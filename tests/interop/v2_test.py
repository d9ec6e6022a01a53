#!/usr/bin/python3
"""BitTorrent v2 (BEP 52) with libtorrent, both ways: v2-only and hybrid .torrent files,
magnet links with only `btmh` (the piece layers then come from the peer through hash
request / hashes messages), and a hybrid swarm reached through either info-hash. Every
download is checked byte for byte.

Usage: v2_test.py --shoal PATH
"""
import argparse
import json
import os

import harness as h


def btmh_magnet(info, peer):
    return f"magnet:?xt=urn:btmh:1220{info['info_hash_v2']}&dn=x&x.pe={peer}"


def lt_lines(p):
    return [json.loads(l) for l in open(p.log, "rb").read().decode("utf-8", "replace").splitlines()
            if l.startswith("{")]


def log_text(run, name):
    return open(run.path(name), "rb").read().decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "v2")
    try:
        src = run.path("src", "set")
        # Files of several pieces (layers needed), one smaller than a piece, an empty one.
        sizes = [5 << 20, 3 * 65536 + 100, 1000, 0, (2 << 20) + 12345]
        for i, size in enumerate(sizes):
            h.write_random(os.path.join(src, f"f{i}.bin"), size, seed=i + 60)
        names = [f"set/f{i}.bin" for i in range(len(sizes))]
        tor = {}
        for kind in ("v2", "hybrid"):
            tor[kind] = run.path(f"{kind}.torrent")
            tor[kind + "_info"] = h.shoal_create(run, src, tor[kind], f"--{kind}", "--piece-size", "64KiB")

        for kind in ("v2", "hybrid"):
            info = tor[kind + "_info"]
            # libtorrent seeds, shoal downloads from the .torrent.
            lport = h.free_port()
            seed = h.lt_peer(run, "seed", tor[kind], run.path("src"), lport, f"lt-seed-{kind}.log", seconds=300)
            h.wait_listening(lport)
            dst = run.path(f"shoal-{kind}")
            rc = h.shoal_download(run, tor[kind], dst, h.free_port(), f"shoal-{kind}.log", "--peer",
                                  f"127.0.0.1:{lport}", "--seed-time", "0", "--no-dht", "-v")
            run.check(f"{kind}: libtorrent -> shoal (.torrent) completes", rc == 0,
                      f"exit {rc}: {log_text(run, f'shoal-{kind}.log')[-600:]}")
            run.check(f"{kind}: libtorrent -> shoal bytes identical", h.same_tree(run.path("src"), dst, names))

            # shoal has only the btmh link: metadata, then piece layers by hash requests.
            dst = run.path(f"shoal-{kind}-btmh")
            rc = h.shoal_download(run, btmh_magnet(info, f"127.0.0.1:{lport}"), dst, h.free_port(),
                                  f"shoal-{kind}-btmh.log", "--seed-time", "0", "--no-dht", "-v")
            log = log_text(run, f"shoal-{kind}-btmh.log")
            run.check(f"{kind}: btmh-only magnet, libtorrent -> shoal completes", rc == 0, f"exit {rc}: {log[-800:]}")
            run.check(f"{kind}: btmh-only magnet, bytes identical", h.same_tree(run.path("src"), dst, names))
            if kind == "v2":
                run.check("v2 btmh magnet: piece layers fetched from libtorrent and verified",
                          log.count("piece layer of") >= 2, log[-800:])
            run.stop(seed)

            # shoal seeds, libtorrent downloads from the .torrent and from a btmh-only magnet.
            sport = h.free_port()
            sp = h.shoal_seed(run, tor[kind], run.path("src"), sport, f"seed-{kind}.log", "-v", "--no-dht")
            h.wait_listening(sport)
            for via in ("torrent", "btmh"):
                what = tor[kind] if via == "torrent" else btmh_magnet(info, f"127.0.0.1:{sport}")
                dst = run.path(f"lt-{kind}-{via}")
                lp = h.lt_peer(run, "download", what, dst, h.free_port(), f"lt-{kind}-{via}.log",
                               peers=[f"127.0.0.1:{sport}"], seconds=90, extra=["--log-alerts"])
                rc, lines = h.lt_result(lp, timeout=120)
                run.check(f"{kind}: shoal -> libtorrent ({via}) completes", rc == 0,
                          f"exit {rc}: {[l for l in lines if 'alert' not in l][-3:]}")
                got = os.path.join(dst)
                run.check(f"{kind}: shoal -> libtorrent ({via}) bytes identical",
                          h.same_tree(run.path("src"), got, names))
            run.stop(sp)
            seed_log = log_text(run, f"seed-{kind}.log")
            if kind == "hybrid":
                # libtorrent offers the upgrade on its v1 handshake; a hybrid answers with the v2 hash.
                # The btmh download's connections are native v2 handshakes: only the line of a
                # connection that came with the v1 hash and was moved proves the upgrade.
                run.check("hybrid: libtorrent's v1 connections are upgraded to the v2 swarm (BEP 52)",
                          ", v2, upgraded from v1)" in seed_log,
                          [l for l in seed_log.splitlines() if "connected (" in l][:6])

        # Over MSE/PE, both ways: libtorrent never switches an encrypted connection to the
        # v2 swarm after the fact (it finds the torrent by the MSE key and ignores the
        # upgrade bit), so shoal must dial a hybrid's v2 swarm directly; as the responder it
        # upgrades libtorrent's v1 handshake.
        lport = h.free_port()
        seed = h.lt_peer(run, "seed", tor["hybrid"], run.path("src"), lport, "lt-seed-rc4.log", seconds=120,
                         extra=["--encryption", "required"])
        h.wait_listening(lport)
        dst = run.path("shoal-hybrid-rc4")
        rc = h.shoal_download(run, tor["hybrid"], dst, h.free_port(), "shoal-hybrid-rc4.log", "--peer",
                              f"127.0.0.1:{lport}", "--seed-time", "0", "--no-dht", "-v", "--encryption", "required")
        log = log_text(run, "shoal-hybrid-rc4.log")
        run.check("hybrid over RC4: libtorrent -> shoal completes, bytes identical",
                  rc == 0 and h.same_tree(run.path("src"), dst, names), f"exit {rc}: {log[-600:]}")
        run.check("hybrid over RC4: shoal's outgoing connection is in the v2 swarm",
                  "connected (outgoing, tcp, rc4, v2)" in log,
                  [l for l in log.splitlines() if "connected (" in l][:3])
        run.stop(seed)
        sport = h.free_port()
        sp = h.shoal_seed(run, tor["hybrid"], run.path("src"), sport, "seed-hybrid-rc4.log", "-v", "--no-dht",
                          "--encryption", "required")
        h.wait_listening(sport)
        dst = run.path("lt-hybrid-rc4")
        lp = h.lt_peer(run, "download", tor["hybrid"], dst, h.free_port(), "lt-hybrid-rc4.log",
                       peers=[f"127.0.0.1:{sport}"], seconds=60, extra=["--encryption", "required"])
        rc, lines = h.lt_result(lp, timeout=90)
        run.stop(sp)
        seed_log = log_text(run, "seed-hybrid-rc4.log")
        run.check("hybrid over RC4: shoal -> libtorrent completes, bytes identical",
                  rc == 0 and h.same_tree(run.path("src"), dst, names), f"exit {rc}")
        run.check("hybrid over RC4: libtorrent's incoming connection is upgraded to the v2 swarm",
                  "(incoming, tcp, rc4, v2, upgraded from v1)" in seed_log,
                  [l for l in seed_log.splitlines() if "connected (" in l][:3])

        # A v1-only peer in the hybrid swarm is not tested against another client here:
        # aria2 1.36 computes a different info-hash for a hybrid .torrent (it re-encodes the
        # info dictionary: "Unknown info hash"), and Transmission 3.00 refuses to load one.
        # The v1 side is covered by shoal's own v1 handshakes (connections not upgraded).

        # A v2 peer that corrupts one block of each piece it touches (and leaves the other
        # blocks to libtorrent): the bad block is pinned to it by merkle leaf hashes fetched
        # from libtorrent, it is banned, libtorrent is not, and the download completes.
        one = run.path("one", "data.bin")
        h.write_random(one, 2 << 20, seed=77)
        t1 = run.path("one.torrent")
        i1 = h.shoal_create(run, one, t1, "--v2", "--piece-size", "64KiB")
        lport, hport = h.free_port(), h.free_port()
        seed = h.lt_peer(run, "seed", t1, run.path("one"), lport, "lt-seed-one.log", seconds=300, max_upload=4 << 20)
        hostile = run.spawn([h.PY, os.path.join(h.HERE, "hostile_peer.py"), "corrupt_block0", "--port", str(hport),
                             "--info-hash", i1["info_hash_v2"][:40], "--pieces", "32", "--piece-length", "65536"],
                            "hostile.log")
        h.wait_listening(lport)
        h.wait_listening(hport)
        dst = run.path("one-dst")
        rc = h.shoal_download(run, t1, dst, h.free_port(), "shoal-one.log", "--peer", f"127.0.0.1:{hport}",
                              "--peer", f"127.0.0.1:{lport}", "--seed-time", "0", "--no-dht", "-v")
        log = log_text(run, "shoal-one.log")
        run.check("corrupt v2 block: download completes from the honest peer", rc == 0, f"exit {rc}: {log[-600:]}")
        run.check("corrupt v2 block: bytes identical", h.same_tree(run.path("one"), dst, ["data.bin"]))
        blamed = [l for l in log.splitlines() if "merkle leaf hash" in l]
        run.check("corrupt v2 block: pinned by merkle leaf hashes to the corrupting peer and banned",
                  any(f":{hport}" in l and "banned" in l for l in blamed), "\n".join(blamed[-3:]) or log[-800:])
        innocent = [l for l in log.splitlines() if "banned" in l and f":{lport}" in l]
        run.check("corrupt v2 block: the innocent peer (libtorrent) is not banned", not innocent, "\n".join(innocent))
        run.stop(seed)

        # The same with a shoal seeder as the honest peer: it serves the leaf hashes (base
        # layer 0, read and hashed from its files) that pin the corrupt block.
        sport = h.free_port()
        seed = h.shoal_seed(run, t1, run.path("one"), sport, "seed-one.log", "-v", "--no-dht",
                            "--max-upload-rate", "1MiB")
        h.wait_listening(sport)
        dst = run.path("one-dst2")
        rc = h.shoal_download(run, t1, dst, h.free_port(), "shoal-one2.log", "--peer", f"127.0.0.1:{hport}",
                              "--peer", f"127.0.0.1:{sport}", "--seed-time", "0", "--no-dht", "-v")
        log = log_text(run, "shoal-one2.log")
        run.check("corrupt v2 block, shoal seeder: download completes, bytes identical",
                  rc == 0 and h.same_tree(run.path("one"), dst, ["data.bin"]), f"exit {rc}: {log[-600:]}")
        blamed = [l for l in log.splitlines() if "merkle leaf hash" in l]
        run.check("corrupt v2 block, shoal seeder: leaf hashes from shoal pin the corrupting peer",
                  any(f":{hport}" in l and "banned" in l for l in blamed), "\n".join(blamed[-3:]) or log[-800:])
        innocent = [l for l in log.splitlines() if "banned" in l and f":{sport}" in l]
        run.check("corrupt v2 block, shoal seeder: the shoal seeder is not banned", not innocent, "\n".join(innocent))
        run.stop(seed)
        run.stop(hostile)
        return 0
    finally:
        rc = run.finish()
        if rc:
            raise SystemExit(rc)


if __name__ == "__main__":
    h.main_guard(main)
