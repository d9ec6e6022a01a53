#!/usr/bin/env python3
"""`shoal download`'s live lines on a terminal fit its width and leave nothing behind.

In a pseudo-terminal of 80 columns, then resized to 200 (TIOCSWINSZ, which sends the
child SIGWINCH), a rate-limited download of a torrent with a long name from a local
seeder, then two torrents at once (a line each), then nine (one line for them all).
Every frame drawn in place (text after a carriage return) must be narrower than the
terminal it was drawn for (no wrap), end by erasing to the end of the line (nothing an older, longer line left), the name abbreviated
at 80 columns and whole at 200; the two-torrent run redraws two lines in place.

Usage: progress_lines.py SHOAL
"""
import fcntl
import os
import pty
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import shutil
import termios
import time

ESC = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
LONG = "a-torrent-whose-name-is-far-too-long-for-an-eighty-column-terminal-line.bin"


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def spawn_in_pty(argv, cwd, cols):
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execv(argv[0], argv)
    set_size(fd, 24, cols)
    return pid, fd


def read_until(fd, pid, seen, until):
    """Reads the pty until `until(seen)` is true or the child ends; returns (seen, ended, status)."""
    while True:
        if until(seen):
            return seen, False, None
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                _, status = os.waitpid(pid, 0)
                return seen, True, status
            seen += chunk
        else:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return seen, True, status


def frames(raw):
    """The frames drawn in place: each stretch after a carriage return up to the next one
    (or a newline), with whether it erased to the end of the line, and its visible text."""
    out = []
    for part in raw.split(b"\r")[1:]:
        seg = part.split(b"\n")[0]
        visible = ESC.sub(b"", seg).decode("utf-8", "replace")
        if visible.strip():
            out.append((visible, b"\x1b[K" in seg or b"\x1b[J" in seg))
    return out


def free_port():
    while True:
        port = random.randint(20000, 60000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def main():
    shoal = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="shoal-lines-")
    passed = failed = 0
    seeder = None

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(("PASS" if ok else "FAIL") + f": {name}" + ("" if ok else f": {detail}"), flush=True)
        if ok:
            passed += 1
        else:
            failed += 1

    try:
        data = os.path.join(work, "src", LONG)
        other = os.path.join(work, "src", "short.bin")
        os.makedirs(os.path.dirname(data))
        with open(data, "wb") as f:
            f.write(os.urandom(12 << 20))
        with open(other, "wb") as f:
            f.write(os.urandom(6 << 20))
        t1, t2 = os.path.join(work, "long.torrent"), os.path.join(work, "short.torrent")
        many = []
        for i in range(9):
            with open(os.path.join(work, "src", f"small{i}.bin"), "wb") as f:
                f.write(os.urandom(1 << 20))
            many.append(os.path.join(work, f"small{i}.torrent"))
        pairs = [(data, t1), (other, t2)] + [(os.path.join(work, "src", f"small{i}.bin"), many[i]) for i in range(9)]
        for src, t in pairs:
            subprocess.run([shoal, "create", "--v1", "-o", t, src], check=True, capture_output=True)
        port = free_port()
        seeder = subprocess.Popen([shoal, "seed", t1, t2, *many, "-d", os.path.dirname(data), "--port", str(port),
                                   "--local", "--no-dht", "--no-lsd"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        common = ["--peer", f"127.0.0.1:{port}", "--port", "0", "--local", "--no-dht", "--no-lsd", "--seed-time", "0",
                  "--max-download-rate", "1MiB"]

        # One torrent: 80 columns, then 200 once a few frames were drawn.
        pid, fd = spawn_in_pty([shoal, "download", t1, "-d", os.path.join(work, "d1"), *common], work, 80)
        narrow, ended, status = read_until(fd, pid, b"", lambda s: len([f for f in frames(s) if "down" in f[0]]) >= 3)
        check("frames drawn at 80 columns", not ended, narrow[-300:])
        set_size(fd, 24, 200)
        wide, ended, status = read_until(fd, pid, b"", lambda s: False)
        rc = os.waitstatus_to_exitcode(status) if status is not None else None
        check("download completes (exit 0)", rc == 0, f"rc={rc} {wide[-400:]!r}")
        nf, wf = frames(narrow), frames(wide)
        check("80 columns: no frame wraps", nf and all(len(v) < 80 for v, _ in nf),
              max((v for v, _ in nf), key=len, default=""))
        check("80 columns: every frame erases to the end of the line", all(k for _, k in nf), repr(nf[:2]))
        check("80 columns: the name abbreviated", any("..." in v and v.startswith("a-torrent") for v, _ in nf),
              repr(nf[-1:]))
        check("80 columns: state, percent, sizes and rate kept",
              any(re.search(r"downloading +\d+\.\d%.*MiB / 12\.00 MiB.*down ", v) for v, _ in nf), repr(nf[-1:]))
        # After the resize: redrawn at once for 200 columns, the name whole.
        whole = [v for v, _ in wf if v.startswith(LONG)]
        check("200 columns: redrawn with the whole name", len(whole) >= 1, repr(wf[:3]))
        check("200 columns: no frame wraps", wf and all(len(v) < 200 for v, _ in wf),
              max((v for v, _ in wf), key=len, default=""))
        check("200 columns: every frame erases to the end of the line", all(k for _, k in wf), repr(wf[:2]))
        check("200 columns: wider than 80 when there is room", any(len(v) >= 80 for v in whole), repr(whole[:1]))
        text = (narrow + wide).decode("utf-8", "replace")
        check("the port in use is printed", re.search(r"listening on port \d+", text) is not None, text[:200])
        os.close(fd)

        # Two torrents: two lines redrawn in place (cursor up one line before each redraw).
        pid, fd = spawn_in_pty([shoal, "download", t1, t2, "-d", os.path.join(work, "d2"), *common], work, 80)
        out, ended, status = read_until(fd, pid, b"", lambda s: False)
        rc = os.waitstatus_to_exitcode(status) if status is not None else None
        check("two torrents: exit 0", rc == 0, f"rc={rc} {out[-400:]!r}")
        check("two torrents: the block redrawn in place", out.count(b"\x1b[1A") >= 2, out[-300:])
        f2 = frames(out)
        check("two torrents: no frame wraps, each erases its line", f2 and all(len(v) < 80 and k for v, k in f2),
              repr([v for v, k in f2 if len(v) >= 80 or not k][:2]))
        check("two torrents: a line each", any(v.startswith("short.bin") for v, _ in f2) and
              any(v.startswith("a-torrent") for v, _ in f2), repr(f2[-2:]))
        tail = out.decode("utf-8", "replace")
        check("two torrents: the summary table", "2 of 2 torrents completed" in tail and "AVG RATE" in tail,
              tail[-500:])
        os.close(fd)

        # create's bar at 80 columns: fitted too.
        pid, fd = spawn_in_pty([shoal, "create", "--v1", "--piece-size", "16KiB", "--threads", "1", "-f", "-o",
                                os.path.join(work, "again.torrent"), data], work, 80)
        out, ended, status = read_until(fd, pid, b"", lambda s: False)
        fc = [(v, k) for v, k in frames(out) if v.startswith("hashing")]
        check("create at 80 columns: its bar fits and erases to the end of the line",
              fc and all(len(v) < 80 and k for v, k in fc), repr(fc[-1:]))
        os.close(fd)

        # Nine torrents: more than one line each would be useful for, so one line for them all.
        pid, fd = spawn_in_pty([shoal, "download", *many, "-d", os.path.join(work, "d3"), *common], work, 80)
        out, ended, status = read_until(fd, pid, b"", lambda s: False)
        rc = os.waitstatus_to_exitcode(status) if status is not None else None
        check("nine torrents: exit 0", rc == 0, f"rc={rc} {out[-400:]!r}")
        f3 = frames(out)
        live = [v for v, _ in f3 if "torrents:" in v]
        check("nine torrents: one aggregate line, redrawn in place", len(live) >= 2 and b"\x1b[1A" not in out and
              all(v.startswith("9 torrents:") for v in live), repr(f3[:3]))
        check("nine torrents: the aggregate line fits", all(len(v) < 80 and k for v, k in f3), repr(f3[-1:]))
        tail = out.decode("utf-8", "replace")
        check("nine torrents: the table", "9 of 9 torrents completed" in tail, tail[-400:])
        os.close(fd)
    finally:
        if seeder:
            seeder.send_signal(signal.SIGINT)
            try:
                seeder.wait(10)
            except subprocess.TimeoutExpired:
                seeder.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    raise SystemExit(main())
