#!/usr/bin/python3
"""shoal's web UI in headless Chromium (playwright-core, tests/web/ui_test.mjs) against a
daemon whose magnet is seeded by libtorrent (the daemon limited to 400 kB/s, so progress
is seen moving and the download lasts long enough to look at): the turtle toggle, add,
live progress, the Peers, Trackers and Pieces tabs and the rate graph while it downloads,
pause, resume, a file's priority, the settings (a limit saved, a refusal shown), the
Feeds dialog (a feed served here added and listed with its items, a rule added, both
removed; through the qBittorrent API's rss/* calls), a phone-sized viewport (light and
dark), remove with data. The daemon's own view is checked
after each step through the RPC, and the screenshots are kept in --shots
(build/test-artifacts/web under ctest).

Usage: web_ui_test.py --shoal PATH [--shots DIR]
"""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import threading

import harness as h
from daemon_test import Rpc, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "web", "ui_test.mjs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    run = h.Run(args.shoal, "web-ui")
    try:
        missing = [p for p in ("/usr/bin/chromium", os.path.join(HERE, "..", "web", "node_modules", "playwright-core"))
                   if not os.path.exists(p)]
        if missing:
            run.check("Chromium and playwright-core are installed (scripts/install-deps, scripts/run-tests)", False,
                      f"missing: {missing}")
            return run.finish()
        src = run.path("src")
        h.write_random(os.path.join(src, "show", "episode1.mkv"), 3 << 20, seed=51)
        h.write_random(os.path.join(src, "show", "episode2.mkv"), 3 << 20, seed=52)
        info = h.shoal_create(run, os.path.join(src, "show"), run.path("show.torrent"), "--v1", "--piece-size", "64KiB")
        tracker = h.start_opentracker(run, [info["info_hash_v1"]])
        announce = f"http://127.0.0.1:{tracker}/announce"
        info = h.shoal_create(run, os.path.join(src, "show"), run.path("show.torrent"), "--v1", "--piece-size", "64KiB",
                              "-t", announce)
        h.lt_peer(run, "seed", run.path("show.torrent"), src, h.free_port(), "lt-seed.log", seconds=600)
        dl, rpc_port = run.path("dl"), h.free_port()
        # Loopback moves 6 MiB in a blink (libtorrent does not limit local peers): the daemon's
        # own download limit makes the transfer last about 16 s, so the page can show it
        # moving, and its peers, pieces and rate while it does.
        os.makedirs(run.path("state"))
        with open(run.path("state", "settings.json"), "w") as f:
            json.dump({"speed-limit-down": 400, "speed-limit-down-enabled": True}, f)
        run.spawn([run.shoal, "daemon", "--state-dir", run.path("state"), "--download-dir", dl, "--rpc-port",
                   str(rpc_port), "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd"], "daemon.log")
        h.wait_listening(rpc_port)
        shots = args.shots or run.path("shots")
        if os.path.isdir(shots):
            shutil.rmtree(shots)
        magnet = f"magnet:?xt=urn:btih:{info['info_hash_v1']}&dn=show&tr={announce}"
        # A feed for the Feeds dialog: two items no rule of the test matches (nothing added).
        feeds = run.path("feeds")
        os.makedirs(feeds)
        with open(os.path.join(feeds, "feed.xml"), "w") as f:
            f.write('<?xml version="1.0"?><rss version="2.0"><channel><title>Test releases</title>'
                    + "".join(f'<item><title>Release {i}</title><guid>r{i}</guid><enclosure url="magnet:?xt=urn:btih:'
                              f'{str(i) * 40}&amp;dn=r{i}" type="application/x-bittorrent"/></item>' for i in (1, 2))
                    + "</channel></rss>")

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=feeds, **kw)

            def log_message(self, *a):
                pass
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        feed_url = f"http://127.0.0.1:{web.server_address[1]}/feed.xml"
        try:
            r = subprocess.run(["node", DRIVER, "--url", f"http://127.0.0.1:{rpc_port}/", "--magnet", magnet,
                                "--feed", feed_url, "--shots", shots], capture_output=True, text=True, timeout=300)
            out, err = r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            out, err = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
        steps = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        for s in steps:
            run.check(f"web UI: {s['step']}", s["ok"], s.get("detail", ""))
        run.check("web UI: every step ran", any(s["step"] == "no script errors on the page" for s in steps),
                  (out + err)[-800:])
        rpc = Rpc(rpc_port)
        # What the page saved in its settings and left after its turtle toggles, from outside.
        got = rpc.call("session-get")["arguments"]
        run.check("the daemon kept the download limit saved in the settings dialog (777 kB/s), turtle mode off, "
                  "the folder unchanged after the refused one",
                  got.get("speed-limit-down") == 777 and got.get("speed-limit-down-enabled") is True
                  and got.get("alt-speed-enabled") is False and got.get("download-dir") == dl
                  and got.get("alt-speed-down") != 33,
                  json.dumps({k: got.get(k) for k in ("speed-limit-down", "speed-limit-down-enabled",
                                                      "alt-speed-enabled", "download-dir", "alt-speed-down")}))
        with open(run.path("state", "settings.json")) as f:
            saved = json.load(f)
        run.check("settings.json on disk has the new limit", saved.get("speed-limit-down") == 777,
                  str(saved.get("speed-limit-down")))
        run.check("the removal deleted the torrent and its data",
                  bool(wait_for(lambda: rpc.torrents(["id"]) == [] and not os.path.exists(os.path.join(dl, "show")), 15)),
                  str(rpc.torrents(["id", "name"])))
        rss = json.load(open(run.path("state", "rss.json"))) if os.path.exists(run.path("state", "rss.json")) else None
        run.check("the feed and the rule the page added and removed are gone from STATE/rss.json too",
                  rss == {"feeds": [], "rules": {}}, str(rss))
        web.shutdown()
        pngs = sorted(os.listdir(shots)) if os.path.isdir(shots) else []
        want = {"empty.png", "turtle.png", "peers.png", "pieces.png", "trackers.png", "complete.png", "details.png",
                "settings.png", "settings-error.png", "feeds.png", "phone.png", "phone-dark.png", "phone-peers.png",
                "phone-trackers.png", "phone-pieces.png", "phone-pieces-dark.png", "phone-settings.png",
                "phone-settings-dark.png", "phone-feeds.png", "phone-feeds-dark.png"}
        run.check("screenshots saved (desktop: turtle, peers, pieces, trackers, details, settings and its error, feeds; "
                  "phone light and dark: list, tabs, settings, feeds)",
                  want <= set(pngs)
                  and all(os.path.getsize(os.path.join(shots, p)) > 5000 for p in pngs), f"{shots}: {pngs}")
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
