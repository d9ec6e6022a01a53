#!/usr/bin/python3
"""shoal daemon following an RSS feed written by `shoal publish` of a folder served over
HTTP on loopback: the items whose titles pass the include/exclude filter are added (their
.torrent fetched from the feed's enclosures) with the feed's labels and folder, and
download from the web seed; the others are not; an item taken once is not taken again,
even after it is removed and the daemon restarts; an Atom feed of magnet links works too.

Usage: daemon_feed_test.py --shoal PATH
"""
import argparse
import http.server
import json
import os
import subprocess
import threading

import harness as h
from daemon_test import Rpc, start_daemon, wait_for


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "daemon-feed")
    try:
        served = run.path("served")
        for i, name in enumerate(["Show.S01E01.mkv", "Show.S01E02.mkv", "Show.S01E03.SAMPLE.mkv", "Other.Movie.mkv"]):
            h.write_random(os.path.join(served, name), 300000 + i * 1000, seed=60 + i)

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=served, **kw)

            def log_message(self, *a):
                pass
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{web.server_address[1]}/"
        r = subprocess.run([run.shoal, "publish", served, "--base-url", base, "--v1", "--json"], capture_output=True,
                           text=True)
        run.check("shoal publish wrote the feed", r.returncode == 0, r.stderr[-400:])
        feed_url = base + ".torrents/feed.xml"
        # An Atom feed with a magnet link (for a torrent nobody seeds: added, not downloaded).
        atom = os.path.join(served, "atom.xml")
        with open(atom, "w") as f:
            f.write('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
                    '<entry><title>Show.S02E01 &amp; more</title><id>urn:x:1</id>'
                    '<link rel="enclosure" href="magnet:?xt=urn:btih:' + "ab" * 20 + '&amp;dn=s2e1"/></entry>'
                    '</feed>')
        state, dl, tv = run.path("state"), run.path("dl"), run.path("dl", "tv")
        os.makedirs(state)
        with open(os.path.join(state, "settings.json"), "w") as f:
            json.dump({"feeds": [
                {"url": feed_url, "include": r"^show\.s01", "exclude": "sample", "labels": ["tv"],
                 "download-dir": tv, "interval": 10},
                {"url": base + "atom.xml", "include": "S02", "labels": ["atom"], "interval": 10},
            ]}, f)
        rpc_port, peer_port = h.free_port(), h.free_port()
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon.log")
        rpc = Rpc(rpc_port)
        fields = ["id", "name", "labels", "downloadDir", "percentDone", "hashString"]
        got = wait_for(lambda: (lambda ts: ts if len(ts) >= 3 and all(
            t["percentDone"] == 1 for t in ts if "tv" in t["labels"]) else None)(rpc.torrents(fields)), 60)
        ts = rpc.torrents(fields)
        names = sorted(t["name"] for t in ts)
        run.check("the filter took E01 and E02 (not the SAMPLE, not the other show) and the Atom magnet",
                  names == ["Show.S01E01.mkv", "Show.S01E02.mkv", "s2e1"], str(names))
        tv_ones = [t for t in ts if "tv" in t["labels"]]
        run.check("... with the feed's labels and folder", len(tv_ones) == 2 and all(t["downloadDir"] == tv for t in tv_ones)
                  and any(t["labels"] == ["atom"] for t in ts), str(ts))
        run.check("... and downloaded from the web seed, bytes identical",
                  bool(got) and h.same_tree(served, tv, ["Show.S01E01.mkv", "Show.S01E02.mkv"]), str(ts))
        # Removed, then a restart and two polls: not taken again.
        e01 = [t["id"] for t in ts if t["name"] == "Show.S01E01.mkv"]
        rpc.call("torrent-remove", ids=e01)
        run.stop(d)
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon2.log")
        rpc = Rpc(rpc_port)
        import time
        time.sleep(22)
        names = sorted(t["name"] for t in rpc.torrents(["name"]))
        run.check("an item taken once is not taken again after a removal and a restart",
                  names == ["Show.S01E02.mkv", "s2e1"], str(names))
        seen = json.load(open(os.path.join(state, "feeds.json")))
        run.check("the ids taken are remembered in STATE/feeds.json",
                  len(seen.get(feed_url, [])) == 2 and seen.get(base + "atom.xml") == ["urn:x:1"], str(seen))
        web.shutdown()
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
