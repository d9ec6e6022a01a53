#!/usr/bin/python3
"""A channel in the web UI (tests/web/channel_test.mjs in headless Chromium): a folder with
a WebM (VP9/Opus, made here by ffmpeg) and a text file, published by `shoal publish` and
served by a web seed limited to about 1.5x the media's bitrate. The daemon has no peer, no
tracker and no DHT: what it plays comes from the web seed alone. The feed is followed in
the UI, Channels lists both items with size and date, Play on the video plays it while its
torrent is incomplete; with "Download new items automatically" on, a file the publisher adds
later is added by itself and the older text file is not. The web seed's log must show the
video's bytes served in ranges.

Usage: web_channel_test.py --shoal PATH [--shots DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "web", "channel_test.mjs")


def publish(run, site, base):
    r = subprocess.run([run.shoal, "publish", site, "--base-url", base, "--piece-size", "32KiB", "--json"],
                       capture_output=True, text=True, timeout=120)
    run.check("shoal publish wrote the feed", r.returncode == 0, r.stderr[-400:])
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    run = h.Run(args.shoal, "web-channel")
    try:
        if not h.browser_tools_ready(run):
            return run.finish()
        site = run.path("site")
        os.makedirs(site)
        clip = os.path.join(site, "clip.webm")
        seconds = 60
        if not h.make_webm(run, clip, seconds):
            return run.finish()
        with open(os.path.join(site, "notes.txt"), "w") as f:
            f.write("Notes on the clip.\n" * 200)
        size = os.path.getsize(clip)
        bitrate = size / seconds
        rate = int(bitrate * 1.5)
        ws_port = h.free_port()
        base = f"http://127.0.0.1:{ws_port}/"
        if not publish(run, site, base):
            return run.finish()
        ws_log = run.path("webseed.jsonl")
        run.spawn([sys.executable, os.path.join(HERE, "webseed_server.py"), "--root", site, "--port", str(ws_port),
                   "--rate", str(rate), "--log", ws_log], "webseed.log")
        h.wait_listening(ws_port)

        state, dl, port = run.path("state"), run.path("dl"), h.free_port()
        os.makedirs(state)
        run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(port),
                   "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd"], "daemon.log")
        h.wait_listening(port)
        shots = args.shots or run.path("shots")
        if os.path.isdir(shots):
            shutil.rmtree(shots)
        ready, published = run.path("ready"), run.path("published")
        driver = subprocess.Popen(
            ["node", DRIVER, "--url", f"http://127.0.0.1:{port}/", "--feed", base + ".torrents/feed.xml",
             "--video", "clip.webm", "--video-size", str(size), "--other", "notes.txt", "--new", "extra.txt",
             "--ready", ready, "--published", published, "--shots", shots],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The publisher's part: once the rule is on, a new item in the feed.
        deadline = time.time() + 240
        while not os.path.exists(ready) and driver.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        if os.path.exists(ready):
            with open(os.path.join(site, "extra.txt"), "w") as f:
                f.write("A later item.\n" * 100)
            if publish(run, site, base):
                with open(published, "w") as f:
                    f.write("done")
        try:
            out, err = driver.communicate(timeout=max(10, deadline - time.time() + 60))
        except subprocess.TimeoutExpired:
            driver.kill()
            out, err = driver.communicate()
            err += "\ntimeout"
        steps = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        for s in steps:
            run.check(f"channel: {s['step']}", s["ok"], s.get("detail", ""))
            if s["ok"] and s.get("detail"):
                print(f"      {s['detail']}")
        run.check("channel: every step ran",
                  any(s["step"] == "the new item is listed in the channel" and s["ok"] for s in steps),
                  (out + err)[-800:])
        served = []
        if os.path.exists(ws_log):
            with open(ws_log) as f:
                served = [json.loads(l) for l in f if l.strip()]
        clip_bytes = sum(e.get("bytes", 0) for e in served if e.get("path", "").endswith("clip.webm"))
        run.check("the web seed served the video in ranges", clip_bytes > 0 and any(
            e.get("range") for e in served if e.get("path", "").endswith("clip.webm")),
            f"{clip_bytes} bytes in {len(served)} requests")
        print(f"media {size} bytes, {bitrate / 1000:.0f} kB/s; web seed limited to {rate / 1000:.0f} kB/s; "
              f"it served {clip_bytes} bytes of the video")
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
