#!/usr/bin/python3
"""shoal stream over HTTP ranges, with real media made by ffmpeg: an MP4 with its moov atom
at the end, one with +faststart, a WebM (VP9/Opus), an MP3 and an Opus song, plus an .srt
subtitle and a text file, in one torrent seeded by a rate-limited `shoal seed`. For each
file a `shoal stream --file N` prints its URL as its first stdout line; then: the last
64 KiB first (a player's look for the moov atom), read while the torrent is incomplete; the
whole file equal to the source; 30 random ranges; two readers at once at different
offsets; HEAD (size, Accept-Ranges); 416 past the end; 400 for a bad Range; two ranges on
one kept-alive connection; the Content-Type per extension; the M3U playlist; /buffered;
the .srt as WebVTT; a foreign Host refused.

Usage: stream_ranges_test.py --shoal PATH
"""
import argparse
import http.client
import json
import os
import random
import select
import shutil
import subprocess
import threading
import time

import harness as h

MEDIA = {
    # name: (ffmpeg arguments after the inputs, content type)
    "moov-end.mp4": (["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-c:a", "aac"], "video/mp4"),
    "faststart.mp4": (["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-c:a", "aac", "-movflags",
                       "+faststart"], "video/mp4"),
    "clip.webm": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "3M", "-c:a", "libopus"],
                  "video/webm"),
    "song.mp3": (["-c:a", "libmp3lame", "-b:a", "320k"], "audio/mpeg"),
    "song.opus": (["-c:a", "libopus", "-b:a", "256k"], "audio/ogg"),
}
SRT = ("1\r\n00:00:01,000 --> 00:00:02,500\r\nHello, stream\r\n\r\n"
       "2\r\n00:00:03,000 --> 00:00:04,000\r\nSecond cue\r\n")


def make_media(folder):
    os.makedirs(folder, exist_ok=True)
    video_in = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=25:allf=t", "-f", "lavfi", "-i",
                "sine=frequency=440:sample_rate=48000"]
    audio_in = ["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000"]
    for name, (args, _) in MEDIA.items():
        video = name.endswith((".mp4", ".webm"))
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *(video_in if video else audio_in),
                "-t", "4" if video else "40", *args, os.path.join(folder, name)]
        subprocess.run(argv, check=True, timeout=300)
    with open(os.path.join(folder, "subs.srt"), "w", newline="") as f:
        f.write(SRT)
    with open(os.path.join(folder, "readme.txt"), "w") as f:
        f.write("not media\n" * 100)


class Stream:
    """A `shoal stream` process; its first stdout line is the URL."""

    def __init__(self, run, torrent, number, seed_port, log, folder=None):
        d = folder or run.path(f"dl-{number}")
        self.p = subprocess.Popen([run.shoal, "stream", torrent, "--file", str(number), "-d", d, "--port", "0",
                                   "--peer", f"127.0.0.1:{seed_port}", "--local", "--no-dht", "--no-lsd"],
                                  stdout=subprocess.PIPE, stderr=open(run.path(log), "wb"), start_new_session=True)
        self.p.log = run.path(log)
        run.procs.append(self.p)
        self.started = time.time()
        self.url = self._first_line(60)
        self.elapsed = time.time() - self.started
        if self.url:
            rest = self.url.split("//", 1)[1]
            self.host, port = rest.split("/", 1)[0].split(":")
            self.port = int(port)
            self.path = "/" + rest.split("/", 1)[1]

    def _first_line(self, timeout):
        buf = b""
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while time.time() < deadline and b"\n" not in buf:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
        return buf.split(b"\n", 1)[0].decode() if b"\n" in buf else None

    def request(self, method, path=None, headers=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path or self.path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def get_range(self, a, b):
        return self.request("GET", headers={"Range": f"bytes={a}-{b}"})

    def buffered(self):
        _, _, body = self.request("GET", self.path + "/buffered")
        return json.loads(body)


def covered(b):
    return sum(e - s for s, e in b["ranges"])


def check_file(run, s, name, src, content_type, first):
    size = len(src)
    label = name
    # Straight away: the end of the file (where moov-end.mp4 keeps its index), while the
    # torrent is probably incomplete; the bytes must be right either way.
    before = s.buffered()
    run.check(f"{label}: /buffered gives the size", before.get("size") == size, str(before))
    tail_start = max(0, size - 65536)
    st, hd, body = s.get_range(tail_start, size - 1)
    run.check(f"{label}: the last 64 KiB first (206, the source's bytes)",
              st == 206 and body == src[tail_start:] and hd.get("content-range") == f"bytes {tail_start}-{size - 1}/{size}",
              f"status {st}, {len(body)} bytes, {hd.get('content-range')}")
    if covered(before) < size:
        run.check(f"{label}: the URL came before the file was complete ({covered(before)} of {size} bytes buffered)",
                  True)
    else:
        print(f"SKIP: {label}: the file was complete before the first /buffered (the incomplete-read check is "
              "skipped for it)")
    # The whole file.
    st, hd, body = s.request("GET")
    run.check(f"{label}: GET of the whole file equals the source", st == 200 and body == src,
              f"status {st}, {len(body)} of {size} bytes")
    run.check(f"{label}: Content-Type {content_type}", hd.get("content-type") == content_type, hd.get("content-type"))
    run.check(f"{label}: Accept-Ranges bytes", hd.get("accept-ranges") == "bytes", str(hd))
    # HEAD
    st, hd, body = s.request("HEAD")
    run.check(f"{label}: HEAD gives the size and Accept-Ranges",
              st == 200 and hd.get("content-length") == str(size) and hd.get("accept-ranges") == "bytes" and not body,
              f"{st} {hd}")
    # 30 random ranges, and suffix and open-ended forms.
    rng = random.Random(size)
    bad = []
    for i in range(30):
        a = rng.randrange(size)
        b = min(size - 1, a + rng.randrange(1, 3 << 20))
        st, hd, body = s.get_range(a, b)
        if st != 206 or body != src[a:b + 1] or hd.get("content-length") != str(b - a + 1):
            bad.append((a, b, st, len(body)))
    run.check(f"{label}: 30 random ranges equal the source's slices", not bad, str(bad[:3]))
    st, _, body = s.request("GET", headers={"Range": "bytes=-1000"})
    run.check(f"{label}: a suffix range (bytes=-1000)", st == 206 and body == src[-1000:], str(st))
    st, _, body = s.request("GET", headers={"Range": f"bytes={size // 3}-"})
    run.check(f"{label}: an open-ended range", st == 206 and body == src[size // 3:], str(st))
    st, _, body = s.request("GET", headers={"Range": "bytes=0-9,100-109"})
    run.check(f"{label}: several ranges: the first one answered", st == 206 and body == src[:10], str(st))
    # Errors.
    st, hd, _ = s.request("GET", headers={"Range": f"bytes={size}-"})
    run.check(f"{label}: 416 for a range past the end, with bytes */SIZE",
              st == 416 and hd.get("content-range") == f"bytes */{size}", f"{st} {hd.get('content-range')}")
    st, _, _ = s.request("GET", headers={"Range": "bytes=99999999999999999999999-"})
    run.check(f"{label}: 400 for a Range that does not parse", st == 400, str(st))
    # Two ranges on one connection (kept alive after a sized body).
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    ok = True
    for a, b in ((0, 999), (size // 2, size // 2 + 999)):
        c.request("GET", s.path, headers={"Range": f"bytes={a}-{b}"})
        r = c.getresponse()
        ok = ok and r.status == 206 and r.read() == src[a:b + 1]
    c.close()
    run.check(f"{label}: two ranges on one kept-alive connection", ok)
    # Two readers at once, at different places, each to the end.
    results = {}

    def reader(key, start):
        try:
            st, _, body = s.request("GET", headers={"Range": f"bytes={start}-"})
            results[key] = st == 206 and body == src[start:]
        except OSError as e:
            results[key] = repr(e)

    ts = [threading.Thread(target=reader, args=(k, o)) for k, o in (("a", 0), ("b", size // 2))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(180)
    run.check(f"{label}: two readers at once at different offsets both complete",
              results.get("a") is True and results.get("b") is True, str(results))
    after = s.buffered()
    run.check(f"{label}: /buffered covers the whole file after it was read", covered(after) == size, str(after))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "stream")
    try:
        if not shutil.which("ffmpeg"):
            run.check("ffmpeg is installed (scripts/install-deps)", False)
            return run.finish()
        media = run.path("src", "media")
        make_media(media)
        torrent = run.path("media.torrent")
        made = h.shoal_create(run, media, torrent, "--piece-size", "32KiB")
        info = json.loads(subprocess.run([run.shoal, "info", torrent, "--json"], capture_output=True, text=True,
                                         check=True).stdout)
        numbers = {os.path.basename(f["path"]): f["index"] for f in info["files"]}
        sources = {n: open(os.path.join(media, n), "rb").read() for n in numbers}
        print("files:", {n: len(b) for n, b in sources.items()}, flush=True)
        hash_hex = made["info_hash_v1"]

        seed_port = h.free_port()
        seed = h.shoal_seed(run, torrent, run.path("src"), seed_port, "seed.log", "--max-upload-rate", "1MiB",
                            "--no-dht", "--no-lsd")
        h.wait_listening(seed_port)

        first = True
        by_index = {}  # file name -> its index in stream URLs
        for name, (_, ctype) in MEDIA.items():
            s = Stream(run, torrent, numbers[name], seed_port, f"stream-{name}.log")
            if not run.check(f"{name}: the URL is the first stdout line", s.url is not None and
                             s.url.startswith("http://127.0.0.1:") and f"/stream/{hash_hex}/" in s.url, str(s.url)):
                run.stop(s.p)
                continue
            print(f"{name}: {s.url} after {s.elapsed:.2f} s", flush=True)
            by_index[name] = s.path.rsplit("/", 1)[1]
            check_file(run, s, name, sources[name], ctype, first)
            if first:
                first = False
                st, hd, body = s.request("GET", f"/stream/{hash_hex}.m3u", headers={"Host": f"127.0.0.1:{s.port}"})
                lines = body.decode().splitlines()
                want = sorted(MEDIA)
                titles = [l.split(",", 1)[1] for l in lines if l.startswith("#EXTINF:-1,")]
                urls = [l for l in lines if l.startswith("http://")]
                run.check("the .m3u lists the media files in path order, not the .srt or .txt",
                          st == 200 and lines[:1] == ["#EXTM3U"] and titles == want and len(urls) == len(want) and
                          all(u.startswith(f"http://127.0.0.1:{s.port}/stream/{hash_hex}/") for u in urls),
                          body.decode()[:400])
                # Each playlist URL serves its file (through this process: other files become wanted).
                by_title = dict(zip(titles, urls))
                url = by_title.get("song.mp3", "")
                st, _, body = s.request("GET", "/" + url.split("/", 3)[3], headers={"Range": "bytes=0-4095"})
                run.check("a playlist URL serves its file", st == 206 and body == sources["song.mp3"][:4096], str(st))
                st, _, _ = s.request("GET", headers={"Host": "evil.example"})
                run.check("a foreign Host is refused (421)", st == 421, str(st))
                st, _, _ = s.request("GET", f"/stream/{hash_hex}/9999")
                run.check("404 for a file index the torrent has not", st == 404, str(st))
                st, _, _ = s.request("GET", f"/stream/{'0' * 40}/0")
                run.check("404 for a torrent the session has not", st == 404, str(st))
                st, _, _ = s.request("POST")
                run.check("405 for POST", st == 405, str(st))
            run.stop(s.p)
            run.check(f"{name}: shoal stream exits 0 on SIGTERM", s.p.returncode == 0, str(s.p.returncode))

        # A magnet link: the URL comes once the metadata arrived, for the largest media file.
        p = subprocess.Popen([run.shoal, "stream", made["magnet"], "-d", run.path("dl-magnet"), "--port", "0", "--peer",
                              f"127.0.0.1:{seed_port}", "--local", "--no-dht", "--no-lsd"], stdout=subprocess.PIPE,
                             stderr=open(run.path("stream-magnet.log"), "wb"), start_new_session=True)
        p.log = run.path("stream-magnet.log")
        run.procs.append(p)
        m = Stream.__new__(Stream)
        m.p = p
        url = m._first_line(60)
        largest = max((n for n in MEDIA), key=lambda n: len(sources[n]))
        if run.check(f"magnet: the URL comes after the metadata, for the largest media file ({largest})",
                     url is not None and url.endswith(f"/{hash_hex}/" + by_index.get(largest, "?")), str(url)):
            m.port = int(url.split("//", 1)[1].split("/", 1)[0].split(":")[1])
            m.path = "/" + url.split("//", 1)[1].split("/", 1)[1]
            st, _, body = m.get_range(1000, 200999)
            run.check("magnet: a range equals the source", st == 206 and body == sources[largest][1000:201000], str(st))
        run.stop(p)

        # --player: curl as the player fetches the whole file; shoal stream exits with it.
        out = run.path("played.opus")
        p = subprocess.Popen([run.shoal, "stream", torrent, "--file", str(numbers["song.opus"]), "-d",
                              run.path("dl-player"), "--port", "0", "--peer", f"127.0.0.1:{seed_port}", "--local",
                              "--no-dht", "--no-lsd", "--player", f"curl -s -f -o {out}"], stdout=subprocess.PIPE,
                             stderr=open(run.path("stream-player.log"), "wb"), start_new_session=True)
        p.log = run.path("stream-player.log")
        run.procs.append(p)
        try:
            rc = p.wait(180)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        played = open(out, "rb").read() if os.path.exists(out) else b""
        run.check("--player curl: the player got the whole file and shoal stream exited 0 with it",
                  rc == 0 and played == sources["song.opus"], f"exit {rc}, {len(played)} bytes")
        r = subprocess.run([run.shoal, "stream", torrent, "-d", run.path("dl-noplayer"), "--port", "0", "--local",
                            "--no-dht", "--no-lsd", "--player", "/nonexistent/player"], capture_output=True, text=True,
                           timeout=60)
        run.check("--player that cannot start: exit 1 and a message",
                  r.returncode == 1 and "cannot start the player" in r.stderr, f"{r.returncode} {r.stderr[-200:]}")

        # Bounds, with no peer at all (no data ever comes): 32 bodies at once, the 33rd is
        # 503; a client that goes away while its body waits gives its place back.
        # A folder of its own: the one of the earlier stream of this file holds its data.
        s = Stream(run, torrent, numbers["moov-end.mp4"], 1, "stream-nopeer.log", run.path("dl-nopeer"))
        if run.check("no peer: the URL is printed all the same", s.url is not None, str(s.url)):
            def open_body():
                c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
                c.request("GET", s.path, headers={"Range": "bytes=1000-"})
                return c, c.getresponse().status
            held = [open_body() for _ in range(32)]
            run.check("32 bodies waiting for data at once: each got its 206 head",
                      [st for _, st in held] == [206] * 32, str([st for _, st in held]))
            c, st = open_body()
            c.close()
            run.check("the 33rd at once: 503", st == 503, str(st))
            for c, _ in held:
                c.close()

            def one_more():
                c, st = open_body()
                c.close()
                return st == 206
            run.check("the 32 clients closed: their places are free again", h.wait_for(one_more, 20))
            freed = all(h.wait_for(one_more, 20) for _ in range(40))
            run.check("40 more clients that go away while waiting: none is refused", freed)
            run.check("shoal stream still answers HEAD", s.request("HEAD")[0] == 200)
            run.stop(s.p)

        # The subtitle as WebVTT.
        s = Stream(run, torrent, numbers["subs.srt"], seed_port, "stream-srt.log")
        if run.check("subs.srt: the URL is printed", s.url is not None, str(s.url)):
            st, hd, body = s.request("GET")
            run.check("subs.srt: served as it is, application/x-subrip",
                      st == 200 and body == SRT.encode() and hd.get("content-type") == "application/x-subrip",
                      f"{st} {hd.get('content-type')}")
            for path in (s.path + ".vtt", s.path + "?format=vtt"):
                st, hd, body = s.request("GET", path)
                text = body.decode("utf-8", "replace")
                run.check(f"subs.srt as WebVTT ({path.rsplit('/', 1)[1]})",
                          st == 200 and text.startswith("WEBVTT\n\n") and "00:00:01.000 --> 00:00:02.500" in text and
                          "Hello, stream" in text and "\r" not in text and hd.get("content-type", "").startswith("text/vtt"),
                          f"{st} {text[:120]!r}")
            st, _, _ = s.request("GET", f"/stream/{hash_hex}/{s.path.rsplit('/', 1)[1]}/x")
            run.check("404 for an unknown route", st == 404, str(st))
            run.stop(s.p)
        run.stop(seed)
        return run.finish()
    except Exception:
        run.finish()
        raise


if __name__ == "__main__":
    h.main_guard(main)
