#!/usr/bin/python3
"""Streaming benchmark on loopback: shoal, libtorrent and WebTorrent playing the same
media from the same rate-limited swarm, in one run.

The media is a WebM (VP9/Opus) made by Debian's ffmpeg, --seconds long (default 120). Two
`shoal seed` processes serve it, each limited to 0.75x the media's bitrate (1.5x in all),
and announce to an opentracker on loopback. Each client then starts from nothing:

- shoal: `shoal stream TORRENT --peer SEED...` (default settings); the player reads the URL
  it prints over HTTP.
- libtorrent (python3-libtorrent): sequential_download plus set_piece_deadline for the
  pieces ahead of the play position (deadlines at their playback time), reading what
  have_piece says it has.
- WebTorrent: `webtorrent-cli@4 download TORRENT --port P` (installed with npm
  --ignore-scripts into build-bench/webtorrent), read through its HTTP server.

The player simulation is the same for all three: time to first byte (from starting the
command or adding the torrent), time until 10 s of media is buffered, then 60 s of
playback at the media's bitrate with two seeks (at 20 s of playback to 75% of the file, at
40 s to 25%). A stall is a wait of the play position for data longer than 250 ms (each
wait counted once, including the waits right after a seek). Prints a Markdown table and
writes JSON to --out.

Usage: stream.py --shoal PATH [--seconds 120] [--rounds 1] [--out FILE] [--only shoal,lt,webtorrent]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
import harness as h  # noqa: E402

PLAY_SECONDS = int(os.environ.get("STREAM_PLAY_SECONDS", "60"))
SEEKS = ((20, 0.75), (40, 0.25))  # (playback second, fraction of the file)
if os.environ.get("STREAM_SEEKS"):  # e.g. "5:0.75,10:0.25" for a quick look
    SEEKS = tuple(tuple(float(x) for x in s.split(":")) for s in os.environ["STREAM_SEEKS"].split(","))
STALL = 0.25
TICK = 0.02


def make_media(path, seconds):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-vf", "noise=alls=12:allf=t",
                    "-c:v", "libvpx-vp9", "-b:v", "1M", "-minrate", "1M", "-maxrate", "1M", "-deadline", "realtime",
                    "-cpu-used", "8", "-g", "50", "-c:a", "libopus", "-b:a", "64k", path], check=True, timeout=900)


class Buffer:
    """What a client has of the file, as the player sees it: contiguous bytes from a
    position (HTTP clients) or a have-function (libtorrent)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.start = 0
        self.end = 0
        self.first_byte = None

    def reset(self, pos):
        with self.lock:
            self.start = self.end = pos

    def add(self, pos, n):
        with self.lock:
            if pos == self.end:
                self.end += n
                if self.first_byte is None:
                    self.first_byte = time.monotonic()
                return True
            return False

    def ahead(self, pos):
        with self.lock:
            return self.end - pos if self.start <= pos <= self.end else 0


class HttpReader:
    """Reads the file from `pos` on over one HTTP request, in a thread, staying at most
    `cap` bytes ahead of the play position (a player's buffer limit)."""

    def __init__(self, url, buf, pos, cap, play_pos):
        self.url, self.buf, self.pos, self.cap, self.play_pos = url, buf, pos, cap, play_pos
        self.stop = False
        self.error = None
        self.conn = None
        self.t = threading.Thread(target=self.run, daemon=True)
        buf.reset(pos)
        self.t.start()

    def close(self):
        """A player that seeks drops its request at once, as a browser does."""
        self.stop = True
        c = self.conn
        if c is not None and c.sock is not None:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        u = urllib.parse.urlsplit(self.url)
        c = None
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            self.conn = c
            c.request("GET", u.path, headers={"Range": f"bytes={self.pos}-"})
            r = c.getresponse()
            if r.status not in (200, 206):
                self.error = f"HTTP {r.status}"
                return
            pos = self.pos
            while not self.stop:
                while not self.stop and pos - self.play_pos() > self.cap:
                    time.sleep(0.01)
                chunk = r.read1(64 * 1024)
                if not chunk:
                    return
                if self.stop or not self.buf.add(pos, len(chunk)):
                    return
                pos += len(chunk)
        except Exception as e:  # noqa: BLE001 (a benchmark reports, it does not crash)
            self.error = str(e)
        finally:
            if c:
                c.close()


def simulate(size, bitrate, t0, open_at, ahead, first_byte):
    """The player: returns ttfb, buffered10, stalls, stall seconds, seek waits."""
    need10 = int(10 * bitrate)
    pos = 0
    open_at(0)
    while first_byte() is None:
        if time.monotonic() - t0 > 300:
            return None
        time.sleep(TICK)
    ttfb = first_byte() - t0
    while ahead(pos) < min(need10, size):
        if time.monotonic() - t0 > 600:
            return None
        time.sleep(TICK)
    buffered10 = time.monotonic() - t0
    played = 0.0
    stalls, stalled_for, waits = 0, 0.0, []
    seeks = list(SEEKS)
    waiting_since = None
    last = time.monotonic()
    while played < PLAY_SECONDS:
        time.sleep(TICK)
        now = time.monotonic()
        dt = now - last
        last = now
        if seeks and played >= seeks[0][0]:
            pos = int(size * seeks[0][1])
            seeks.pop(0)
            open_at(pos)
            waiting_since = now
        step = int(bitrate * dt)
        if ahead(pos) >= min(step, size - pos):
            if waiting_since is not None:
                w = now - waiting_since
                waits.append(round(w, 3))
                if w > STALL:
                    stalls += 1
                    stalled_for += w
                waiting_since = None
            pos = min(size, pos + step)
            played += dt
        elif waiting_since is None:
            waiting_since = now - dt
    return {"ttfb": round(ttfb, 3), "buffered10": round(buffered10, 3), "stalls": stalls,
            "stalled_s": round(stalled_for, 2), "waits": waits}


def run_http_client(url_source, size, bitrate, t0):
    buf = Buffer()
    state = {"reader": None, "pos": 0}

    def open_at(pos):
        if state["reader"]:
            state["reader"].close()
        state["pos"] = pos
        url = url_source()
        state["reader"] = HttpReader(url, buf, pos, int(30 * bitrate), lambda: state["pos"])

    def ahead(pos):
        state["pos"] = pos
        return buf.ahead(pos)

    res = simulate(size, bitrate, t0, open_at, ahead, lambda: buf.first_byte)
    if state["reader"]:
        state["reader"].close()
    return res


def bench_shoal(run, torrent, seeds, size, bitrate, port):
    t0 = time.monotonic()
    dl = run.path(f"shoal-{port}")
    p = subprocess.Popen([run.shoal, "stream", torrent, "-d", dl, "--port", str(port), "--local", "-v",
                          *sum((["--peer", f"127.0.0.1:{s}"] for s in seeds), [])],
                         stdout=subprocess.PIPE, stderr=open(run.path(f"shoal-stream-{port}.log"), "wb"))
    try:
        url = p.stdout.readline().decode().strip()
        if not url.startswith("http"):
            return {"error": f"no URL: {url!r}"}
        return run_http_client(lambda: url, size, bitrate, t0) or {"error": "timeout"}
    finally:
        p.terminate()
        p.wait(timeout=30)


def bench_webtorrent(run, wt_bin, torrent, size, bitrate, name):
    port = h.free_port()
    dl = run.path(f"wt-{port}")
    os.makedirs(dl)
    t0 = time.monotonic()
    p = subprocess.Popen(["node", wt_bin, "download", torrent, "-o", dl, "-p", str(port), "-q", "--keep-seeding"],
                         stdout=open(run.path("webtorrent.log"), "wb"), stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/0/{urllib.parse.quote(name)}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("HEAD", f"/0/{urllib.parse.quote(name)}")
                ok = c.getresponse().status in (200, 206)
                c.close()
                if ok:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        return run_http_client(lambda: url, size, bitrate, t0) or {"error": "timeout"}
    finally:
        p.terminate()
        p.wait(timeout=30)


def bench_libtorrent(run, torrent, seeds, size, bitrate):
    import libtorrent as lt
    dl = run.path("lt-dl")
    os.makedirs(dl, exist_ok=True)
    port = h.free_port()
    ses = lt.session({"listen_interfaces": f"127.0.0.1:{port}", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False, "alert_mask": 0})
    ti = lt.torrent_info(torrent)
    plen = ti.piece_length()
    npieces = ti.num_pieces()
    t0 = time.monotonic()
    th = ses.add_torrent({"ti": ti, "save_path": dl})
    th.set_sequential_download(True)
    for s in seeds:
        th.connect_peer(("127.0.0.1", s))
    state = {"pos": 0, "first": None, "deadline_from": -1}

    def have_from(pos):
        n = 0
        p = pos // plen
        while p < npieces and th.have_piece(p):
            n = (p + 1) * plen - pos
            p += 1
        return min(n, size - pos)

    def set_deadlines(pos):
        first = pos // plen
        if first == state["deadline_from"]:
            return
        state["deadline_from"] = first
        th.clear_piece_deadlines()
        last = min(npieces, (pos + int(30 * bitrate)) // plen + 1)
        for p in range(first, last):
            ms = int(max(0, (p * plen - pos) / bitrate) * 1000)
            th.set_piece_deadline(p, ms)

    def open_at(pos):
        state["pos"] = pos
        state["deadline_from"] = -1
        set_deadlines(pos)

    def ahead(pos):
        set_deadlines(pos)
        n = have_from(pos)
        if n > 0 and state["first"] is None:
            state["first"] = time.monotonic()
        return n

    def first_byte():
        ahead(0) if state["first"] is None else None
        return state["first"]

    res = simulate(size, bitrate, t0, open_at, ahead, first_byte)
    ses.remove_torrent(th)
    return res or {"error": "timeout"}


def ensure_webtorrent(folder):
    wt = os.path.join(folder, "node_modules", "webtorrent-cli", "bin", "cmd.js")
    if not os.path.exists(wt):
        os.makedirs(folder, exist_ok=True)
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", folder,
                        "webtorrent-cli@4"], check=True, timeout=600, stdout=subprocess.DEVNULL)
    return wt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default="")
    ap.add_argument("--only", default="shoal,lt,webtorrent")
    ap.add_argument("--keep", default="", help="copy the run's folder (logs) here at the end")
    ap.add_argument("--webtorrent-dir", default=os.path.join(HERE, "..", "build-bench", "webtorrent"))
    args = ap.parse_args()
    only = set(args.only.split(","))
    run = h.Run(os.path.abspath(args.shoal), "bench-stream")
    results = {"shoal": [], "lt": [], "webtorrent": []}
    try:
        wt = ensure_webtorrent(os.path.abspath(args.webtorrent_dir)) if "webtorrent" in only else None
        src = run.path("src")
        os.makedirs(src)
        media = os.path.join(src, "film.webm")
        make_media(media, args.seconds)
        size = os.path.getsize(media)
        bitrate = size / args.seconds
        torrent = run.path("film.torrent")
        hash_hex = h.shoal_create(run, media, torrent)["info_hash_v1"]
        tracker = h.start_opentracker(run, [hash_hex])
        info = h.shoal_create(run, media, torrent, "-t", f"http://127.0.0.1:{tracker}/announce")
        rate = int(bitrate * 0.75)
        seeds = []
        for i in range(2):
            port = h.free_port()
            h.shoal_seed(run, torrent, src, port, f"seed{i}.log", "--max-upload-rate", str(rate), "--no-dht",
                         "--no-lsd")
            h.wait_listening(port)
            seeds.append(port)
        print(f"media: {size} bytes, {args.seconds} s, {bitrate * 8 / 1e6:.2f} Mbit/s; two seeders at "
              f"{rate / 1e3:.0f} kB/s each (1.5x the bitrate in all); pieces of {info.get('piece_length', '?')} bytes",
              flush=True)
        for r in range(args.rounds):
            if "shoal" in only:
                results["shoal"].append(bench_shoal(run, torrent, seeds, size, bitrate, h.free_port()))
                print("shoal", results["shoal"][-1], flush=True)
            if "lt" in only:
                results["lt"].append(bench_libtorrent(run, torrent, seeds, size, bitrate))
                print("libtorrent", results["lt"][-1], flush=True)
            if "webtorrent" in only:
                results["webtorrent"].append(bench_webtorrent(run, wt, torrent, size, bitrate, "film.webm"))
                print("webtorrent", results["webtorrent"][-1], flush=True)
        print()
        print("| client | first byte (s) | 10 s buffered (s) | stalls in 60 s with 2 seeks | time stalled (s) |")
        print("|---|---:|---:|---:|---:|")
        for name, label in (("shoal", "shoal (default settings)"),
                            ("lt", "libtorrent 2.0.8, sequential + set_piece_deadline"),
                            ("webtorrent", "webtorrent-cli 4")):
            for res in results[name]:
                if "error" in res:
                    print(f"| {label} | {res['error']} | | | |")
                else:
                    print(f"| {label} | {res['ttfb']:.2f} | {res['buffered10']:.2f} | {res['stalls']} | "
                          f"{res['stalled_s']:.2f} |")
        for name, rs in results.items():
            for res in rs:
                run.check(f"{name} streamed", "error" not in res, str(res.get("error", "")))
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"size": size, "seconds": args.seconds, "bitrate": bitrate, "results": results}, f, indent=1)
    finally:
        if args.keep:
            for p in run.procs:
                run.stop(p, wait=5)
            shutil.copytree(run.dir, args.keep, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.webm", "*.part", "film*"))
        run.finish()


if __name__ == "__main__":
    main()
