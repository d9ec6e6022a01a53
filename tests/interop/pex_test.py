#!/usr/bin/python3
"""Peer exchange (BEP 11): leechers that know only the seeder learn each other through
PEX and connect (checked in their logs), with shoal and libtorrent in one swarm; a private
torrent (BEP 27) offers no ut_pex and learns nobody that way.

Usage: pex_test.py --shoal PATH
"""
import argparse
import os
import re
import time

import harness as h


def connections_to(log_path, ports):
    """Ports among `ports` that the shoal whose log this is connected to (outgoing)."""
    text = open(log_path, "rb").read().decode("utf-8", "replace")
    got = set()
    for m in re.finditer(r"peer 127\.0\.0\.1:(\d+) connected \(outgoing[,)]", text):
        if int(m.group(1)) in ports:
            got.add(int(m.group(1)))
    return got, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "pex")
    try:
        src = run.path("src")
        h.write_random(os.path.join(src, "payload.bin"), 32 << 20, seed=8)
        for private in (False, True):
            label = "private" if private else "public"
            t = run.path(f"{label}.torrent")
            h.shoal_create(run, os.path.join(src, "payload.bin"), t, "--v1", *(["--private"] if private else []))
            sport = h.free_port()
            # A slow seeder keeps everyone downloading long enough to meet.
            seed = h.shoal_seed(run, t, src, sport, f"{label}-seed.log", "--max-upload-rate", "2MiB", "-v")
            h.wait_listening(sport)
            time.sleep(0.5)
            ports = [h.free_port() for _ in range(3)]
            leechers = []
            for i, port in enumerate(ports):
                d = run.path(f"{label}-leech-{i}")
                leechers.append(h.shoal_download(run, t, d, port, f"{label}-leech-{i}.log", "--seed-time", "30", "-v",
                                                 "--peer", f"127.0.0.1:{sport}", background=True))
                time.sleep(0.3)
            lt_port = h.free_port()
            lt = h.lt_peer(run, "download", t, run.path(f"{label}-lt"), lt_port, f"{label}-lt.log",
                           peers=[f"127.0.0.1:{sport}"], linger=30)
            others = set(ports) | {lt_port}

            def observe():
                learned = {i: connections_to(run.path(f"{label}-leech-{i}.log"), others - {port})[0]
                           for i, port in enumerate(ports)}
                logged = ["pex:" in open(run.path(f"{label}-leech-{i}.log"), "rb").read().decode("utf-8", "replace")
                          for i in range(3)]
                return learned, logged

            def public_done():
                learned, logged = observe()
                outgoing = set().union(*learned.values())
                return sum(logged) >= 2 and bool(outgoing & set(ports)) and lt_port in outgoing

            if not private:
                # The first PEX message goes out 2 s after each handshake; on a busy machine
                # later. Poll for everything the checks below need, to a deadline.
                h.wait_for(public_done, 60, step=0.5)
            else:
                # Nothing must happen: watch for as long as the public swarm needed at most
                # on a quiet machine, with every leecher connected to the seeder meanwhile.
                time.sleep(8)
            learned, pex_logged = observe()
            outgoing = set().union(*learned.values())
            if not private:
                run.check("public: shoal leechers got contacts through PEX", sum(pex_logged) >= 2, str(pex_logged))
                run.check("public: a shoal leecher connected to another leecher it was never told about",
                          bool(outgoing & set(ports)), str(learned))
                run.check("public: a shoal leecher connected to libtorrent's leecher, learned through PEX",
                          lt_port in outgoing, str(learned))
            else:
                run.check("private: no PEX contacts logged", not any(pex_logged), str(pex_logged))
                run.check("private: no leecher connected to another leecher", not outgoing, str(learned))
                # Without this the two checks above would pass on a swarm that never started.
                to_seed = [bool(connections_to(run.path(f"{label}-leech-{i}.log"), {sport})[0]) for i in range(3)]
                run.check("private: every leecher was connected to the seeder meanwhile", all(to_seed), str(to_seed))
            for p in leechers + [lt, seed]:
                run.stop(p)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
