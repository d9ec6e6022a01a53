#!/usr/bin/python3
"""/stream/ through `shoal daemon`: a daemon with a password gets a torrent over the
Transmission RPC (a rate-limited `shoal seed` has it; the two find each other through
opentracker), then GET /stream/HASH/INDEX with a range and the password gives the source's
bytes (read while the torrent downloads), HEAD its size, the .m3u lists the media files;
without the password, or with a wrong one, every /stream/ route is 401.

Usage: stream_daemon_test.py --shoal PATH
"""
import argparse
import base64
import http.client
import json
import os
import subprocess

import harness as h
from daemon_test import Rpc


def get(port, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "stream-daemon")
    try:
        src = run.path("src")
        pack = os.path.join(src, "pack")
        h.write_random(os.path.join(pack, "film.mp4"), 3 << 20, seed=7)
        h.write_random(os.path.join(pack, "song.mp3"), 700 << 10, seed=8)
        torrent = run.path("pack.torrent")
        # The daemon finds the seeder through a tracker (the info-hash does not change with it).
        hash_hex = h.shoal_create(run, pack, torrent, "--piece-size", "32KiB")["info_hash_v1"]
        tracker = h.start_opentracker(run, [hash_hex])
        h.shoal_create(run, pack, torrent, "--piece-size", "32KiB", "-t", f"http://127.0.0.1:{tracker}/announce")
        film = open(os.path.join(pack, "film.mp4"), "rb").read()

        seed_port = h.free_port()
        seed = h.shoal_seed(run, torrent, src, seed_port, "seed.log", "--max-upload-rate", "1MiB", "--no-dht",
                            "--no-lsd")
        h.wait_listening(seed_port)

        state, dl = run.path("state"), run.path("dl")
        os.makedirs(state)
        r = subprocess.run([run.shoal, "daemon", "--state-dir", state, "--set-password", "--rpc-username", "me"],
                           input="s3cret pass\n", capture_output=True, text=True, timeout=60)
        run.check("--set-password saves the password", r.returncode == 0, r.stderr)
        port = h.free_port()
        daemon = run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(port), "--port",
                   str(h.free_port()), "--local", "--no-dht", "--no-lsd"], "daemon.log")
        h.wait_listening(port)
        auth = {"Authorization": "Basic " + base64.b64encode(b"me:s3cret pass").decode()}
        wrong = {"Authorization": "Basic " + base64.b64encode(b"me:nope").decode()}

        rpc = Rpc(port)
        _, headers, _ = rpc.raw("{}", auth)
        sid = headers.get("X-Transmission-Session-Id", "")
        body = json.dumps({"method": "torrent-add", "arguments": {
            "metainfo": base64.b64encode(open(torrent, "rb").read()).decode()}})
        code, _, text = rpc.raw(body, {**auth, "X-Transmission-Session-Id": sid})
        added = json.loads(text).get("arguments", {}) if code == 200 else {}
        run.check("torrent-add over the RPC", "torrent-added" in added, f"{code} {text[:300]}")
        tid = added.get("torrent-added", {}).get("id")
        # Which file index is film.mp4: the .m3u names them.
        st, _, body = get(port, f"/stream/{hash_hex}.m3u", {**auth, "Host": f"127.0.0.1:{port}"})
        lines = body.decode("utf-8", "replace").splitlines()
        run.check("the .m3u through the daemon lists both media files",
                  st == 200 and lines[:1] == ["#EXTM3U"] and sum(l.startswith("#EXTINF:-1,") for l in lines) == 2,
                  f"{st} {lines}")
        urls = dict(zip([l.split(",", 1)[1] for l in lines if l.startswith("#EXTINF")],
                        [l for l in lines if l.startswith("http://")]))
        film_path = "/" + urls.get("film.mp4", "http://x/stream/none/0").split("/", 3)[3]

        st, _, body = get(port, film_path + "/buffered", auth)
        buffered = json.loads(body) if st == 200 else {}
        have = sum(e - s for s, e in buffered.get("ranges", []))
        a, b = len(film) - 200000, len(film) - 1
        st, hd, body = get(port, film_path, {**auth, "Range": f"bytes={a}-{b}"})
        run.check("GET /stream/HASH/INDEX with a range and the password: 206, the source's bytes",
                  st == 206 and body == film[a:b + 1] and hd.get("content-range") == f"bytes {a}-{b}/{len(film)}",
                  f"{st} {len(body)} bytes")
        if have < len(film):
            run.check(f"that read began while the file was incomplete ({have} of {len(film)} bytes buffered)", True)
        else:
            print("SKIP: the file was complete before the first read (the incomplete-read check is skipped)")
        st, hd, body = get(port, film_path, auth)
        run.check("the whole file through the daemon", st == 200 and body == film, f"{st} {len(body)}")
        st, hd, _ = get(port, film_path, auth, method="HEAD")
        run.check("HEAD through the daemon: size, Accept-Ranges, video/mp4",
                  st == 200 and hd.get("content-length") == str(len(film)) and hd.get("accept-ranges") == "bytes" and
                  hd.get("content-type") == "video/mp4", f"{st} {hd}")

        # A body waiting for data nobody has when the daemon is stopped: a clean exit.
        h.write_random(os.path.join(src, "lonely", "alone.mp4"), 1 << 20, seed=9)
        lonely = run.path("lonely.torrent")
        lonely_hash = h.shoal_create(run, os.path.join(src, "lonely"), lonely, "--piece-size", "32KiB")["info_hash_v1"]
        code, _, text = rpc.raw(json.dumps({"method": "torrent-add", "arguments": {
            "metainfo": base64.b64encode(open(lonely, "rb").read()).decode()}}), {**auth, "X-Transmission-Session-Id": sid})
        waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        waiting.request("GET", f"/stream/{lonely_hash}/0", headers={**auth, "Range": "bytes=5000-"})
        wr = waiting.getresponse()
        run.check("a body with no peer to give its data: its 206 head comes at once", wr.status == 206, str(wr.status))

        for label, hdrs in (("no credentials", {}), ("a wrong password", wrong)):
            codes = [get(port, p, {**hdrs, "Range": "bytes=0-99"})[0]
                     for p in (film_path, film_path + "/buffered", f"/stream/{hash_hex}.m3u", f"/stream/{'0' * 40}/0")]
            run.check(f"/stream/ with {label}: 401 on every route", codes == [401] * 4, str(codes))
        run.check("the torrent was added with an id", tid is not None)
        run.stop(daemon)
        waiting.close()
        log = open(daemon.log, "rb").read().decode("utf-8", "replace")
        run.check("SIGTERM while that body waits: the daemon exits 0", daemon.returncode == 0,
                  f"exit {daemon.returncode}: {log[-600:]}")

        run.stop(seed)
        return run.finish()
    except Exception:
        run.finish()
        raise


if __name__ == "__main__":
    h.main_guard(main)
