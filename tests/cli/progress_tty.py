#!/usr/bin/env python3
"""`shoal create` on a terminal draws a live progress bar; without one it stays quiet.

Usage: progress_tty.py SHOAL
"""
import os
import pty
import shutil
import subprocess
import sys
import tempfile


def run_in_pty(argv, cwd):
    """Runs argv with stdin/stdout/stderr on a new pseudo-terminal; returns (exit code, bytes seen)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
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
        frames = [f for f in text.split("\r") if "hashing [" in f]
        check("progress bar drawn in place (carriage returns)", len(frames) >= 2, f"frames={len(frames)}")
        check("bar reaches 100%", any("100.0%" in f for f in frames), repr(frames[-1:]))
        check("bar shows sizes and rate", any("MiB / 96.00 MiB" in f and "/s" in f for f in frames), repr(frames[-1:]))
        check("magnet link printed", "magnet:?xt=urn:btih:" in text)

        proc = subprocess.run([shoal, "create", "-o", "t2.torrent", data], cwd=work, capture_output=True, text=True)
        check("no bar when stderr is not a terminal", proc.returncode == 0 and "hashing [" not in proc.stderr,
              proc.stderr[-300:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
