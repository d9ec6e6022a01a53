#!/usr/bin/env python3
"""`shoal create` on a terminal draws a live progress bar; without one it stays quiet.

Usage: progress_tty.py SHOAL
"""
import fcntl
import os
import pty
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time


def run_in_pty(argv, cwd):
    """Runs argv with stdin/stdout/stderr on a new pseudo-terminal; returns (exit code, bytes seen)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        # A terminal 200 columns wide: room for every field of the download's line.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        os.execv(argv[0], argv)
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen


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
    work = tempfile.mkdtemp(prefix="shoal-tty-")
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(("PASS" if ok else "FAIL") + f": {name}" + ("" if ok else f": {detail}"))
        if ok:
            passed += 1
        else:
            failed += 1

    try:
        data = os.path.join(work, "big.bin")
        with open(data, "wb") as f:
            f.write(os.urandom(96 << 20))
        rc, seen = run_in_pty([shoal, "create", "--piece-size", "16KiB", "--threads", "1", "-o", "t1.torrent", data],
                              work)
        text = seen.decode("utf-8", "replace")
        check("exit code 0 on a terminal", rc == 0, f"rc={rc} output={text[-300:]!r}")
        frames = [f for f in text.split("\r") if f.startswith("hashing") and "[" in f]
        check("progress bar drawn in place (carriage returns)", len(frames) >= 2, f"frames={len(frames)}")
        check("bar reaches 100%", any("100.0%" in f for f in frames), repr(frames[-1:]))
        check("bar shows sizes and rate", any("MiB / 96.00 MiB" in f and "/s" in f for f in frames), repr(frames[-1:]))
        check("magnet link printed", "magnet:?xt=urn:btih:" in text)

        proc = subprocess.run([shoal, "create", "-o", "t2.torrent", data], cwd=work, capture_output=True, text=True)
        check("no bar when stderr is not a terminal", proc.returncode == 0 and "hashing" not in proc.stderr,
              proc.stderr[-300:])

        # `shoal download` on a terminal: a live line with percent, sizes, rates, peers and ETA.
        port = free_port()
        seeder = subprocess.Popen([shoal, "seed", "t1.torrent", "-d", work, "--port", str(port), "--local",
                                   "--max-upload-rate", "32MiB"], cwd=work, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            rc, seen = run_in_pty([shoal, "download", "t1.torrent", "-d", os.path.join(work, "dl"), "--port",
                                   str(free_port()), "--local", "--seed-time", "0", "--peer", f"127.0.0.1:{port}"],
                                  work)
        finally:
            seeder.terminate()
            seeder.wait()
        text = seen.decode("utf-8", "replace")
        frames = [f for f in text.split("\r") if "downloading " in f and "[" in f]
        check("download exits 0 on a terminal", rc == 0, f"rc={rc} {text[-300:]!r}")
        check("download draws a live progress line", len(frames) >= 2, f"frames={len(frames)} {text[-300:]!r}")
        check("the line shows percent, sizes, rates, peers and ETA",
              any("%" in f and "/ 96.00 MiB" in f and "down " in f and "peers 1" in f and "ETA" in f for f in frames),
              repr(frames[-1:]))
        check("a summary line ends the download", "96.00 MiB of 96.00 MiB (100.0%)" in text, text[-300:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
