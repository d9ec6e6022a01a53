#!/usr/bin/python3
"""The web UI's player in headless Chromium (tests/web/player_test.mjs): a WebM (VP9/Opus,
made here by ffmpeg) with an .srt beside it, seeded by a `shoal seed` limited to about 1.5x
the media's bitrate; the daemon gets the torrent over the RPC and finds the seeder through
opentracker. Play on the file: the <video> plays while the torrent is incomplete, the
buffer bar and the subtitle track are there, and a seek near the end plays again.
Screenshots go to --shots.

Usage: web_player_test.py --shoal PATH [--shots DIR]
"""
import argparse
import base64
import json
import os
import shutil
import subprocess

import harness as h
from daemon_test import Rpc

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "web", "player_test.mjs")

SRT = """1
00:00:01,000 --> 00:00:04,000
First line

2
00:00:05,000 --> 00:00:08,500
Second line
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    run = h.Run(args.shoal, "web-player")
    try:
        if not h.browser_tools_ready(run):
            return run.finish()
        src = run.path("src")
        show = os.path.join(src, "show")
        os.makedirs(show)
        clip = os.path.join(show, "clip.webm")
        seconds = 90
        if not h.make_webm(run, clip, seconds):
            return run.finish()
        with open(os.path.join(show, "clip.en.srt"), "w") as f:
            f.write(SRT)
        size = os.path.getsize(clip)
        bitrate = size / seconds  # bytes per second of media
        torrent = run.path("show.torrent")
        hash_hex = h.shoal_create(run, show, torrent, "--piece-size", "32KiB")["info_hash_v1"]
        tracker = h.start_opentracker(run, [hash_hex])
        h.shoal_create(run, show, torrent, "--piece-size", "32KiB", "-t", f"http://127.0.0.1:{tracker}/announce")
        seed_port = h.free_port()
        rate = int(bitrate * 1.5)
        h.shoal_seed(run, torrent, src, seed_port, "seed.log", "--max-upload-rate", str(rate), "--no-dht", "--no-lsd")
        h.wait_listening(seed_port)

        state, dl, port = run.path("state"), run.path("dl"), h.free_port()
        os.makedirs(state)
        run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(port),
                   "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd"], "daemon.log")
        h.wait_listening(port)
        rpc = Rpc(port)
        with open(torrent, "rb") as f:
            added = rpc.call("torrent-add", metainfo=base64.b64encode(f.read()).decode())
        run.check("the daemon took the torrent", added.get("result") == "success", json.dumps(added))
        shots = args.shots or run.path("shots")
        if os.path.isdir(shots):
            shutil.rmtree(shots)
        try:
            r = subprocess.run(["node", DRIVER, "--url", f"http://127.0.0.1:{port}/", "--file", "show/clip.webm",
                                "--shots", shots], capture_output=True, text=True, timeout=300)
            out, err = r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            out, err = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
        steps = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        for s in steps:
            run.check(f"player: {s['step']}", s["ok"], s.get("detail", ""))
            if s["ok"] and s.get("detail"):
                print(f"      {s['detail']}")
        run.check("player: every step ran", any(s["step"] == "Close closes the player" for s in steps),
                  (out + err)[-800:])
        print(f"media {size} bytes, {bitrate / 1000:.0f} kB/s; seeder limited to {rate / 1000:.0f} kB/s")
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
