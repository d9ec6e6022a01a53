#!/usr/bin/python3
"""Rate limits hold at every value: --max-download-rate and --max-upload-rate, 50 KiB/s and
1 MiB/s, measured over 30 s at the receiver.

A `shoal seed` and a `shoal download --peer` of a torrent larger than the run can move;
the limit is on the downloader (--max-download-rate) or on the seeder (--max-upload-rate).
The receiving side's `downloaded` bytes are read from its --json-progress lines (one a
second), each stamped with this script's clock as it arrives. From the first second after
the first byte:
  - every 5 s window averages the limit within 10% (50 KiB/s) or 5% (1 MiB/s);
  - no single second moves more than two seconds' worth (no burst).
The two limits run at the same time (two swarms), first at 50 KiB/s, then at 1 MiB/s.

    /usr/bin/python3 tests/interop/rate_limit_test.py --shoal build/shoal
"""

import argparse
import json
import subprocess
import threading
import time

from harness import Run, free_port, main_guard, shoal_create, wait_listening, write_random

KIB = 1024
MEASURE = 30  # seconds of samples after the start-up second


class Receiver:
    """A `shoal download` whose progress lines are read as they come."""

    def __init__(self, run, argv, name):
        self.samples = []  # (monotonic time, downloaded bytes)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(run.path(name + ".err"), "wb"),
                                  start_new_session=True)
        self.p.log = run.path(name + ".err")
        run.procs.append(self.p)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.p.stdout:
            now = time.monotonic()
            if not line.startswith(b"{"):
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if "downloaded" in o and o.get("event", "progress") == "progress":
                self.samples.append((now, o["downloaded"]))

    def measured(self):
        """Samples from one second after the first byte on (start-up allowance)."""
        s = list(self.samples)
        first = next((i for i, (_, d) in enumerate(s) if d > 0), None)
        return [] if first is None else s[first + 1:]


def judge(run, what, rate, tolerance, samples):
    ok_len = run.check(f"{what}: {MEASURE} s of samples", len(samples) > MEASURE, f"{len(samples)} samples")
    if not ok_len:
        return
    windows, seconds = [], []
    for i in range(len(samples)):
        j = next((k for k in range(i + 1, len(samples)) if samples[k][0] - samples[i][0] >= 4.95), None)
        if j is not None:
            windows.append((samples[j][1] - samples[i][1]) / (samples[j][0] - samples[i][0]))
        if i + 1 < len(samples):
            seconds.append(samples[i + 1][1] - samples[i][1])
    low, high = rate * (1 - tolerance), rate * (1 + tolerance)
    shown = ", ".join(f"{w / KIB:.1f}" for w in windows)
    if windows:
        print(f"{what}: 5 s windows {min(windows) / KIB:.1f}..{max(windows) / KIB:.1f} KiB/s, "
              f"largest second {max(seconds) / KIB:.1f} KiB", flush=True)
    run.check(f"{what}: every 5 s window within {tolerance:.0%} of {rate / KIB:.0f} KiB/s",
              bool(windows) and all(low <= w <= high for w in windows), f"KiB/s: {shown}")
    run.check(f"{what}: no second moves more than two seconds' worth", max(seconds) <= 2 * rate,
              f"largest second: {max(seconds) / KIB:.1f} KiB")


def pair(run, tag, rate, size):
    """A swarm limited on the download side and one limited on the upload side, together."""
    src = run.path(f"src-{tag}")
    write_random(run.path(f"src-{tag}", "data.bin"), size, seed=size % 997)
    torrent = run.path(f"{tag}.torrent")
    shoal_create(run, run.path(f"src-{tag}", "data.bin"), torrent)
    limit = f"{rate // KIB}KiB"
    receivers = {}
    for side in ("download", "upload"):
        sport = free_port()
        seeder = [run.shoal, "seed", torrent, "-d", src, "--port", str(sport), "--local", "--no-dht", "--no-lsd"]
        if side == "upload":
            seeder += ["--max-upload-rate", limit]
        run.spawn(seeder, f"seed-{tag}-{side}.log")
        wait_listening(sport)
        argv = [run.shoal, "download", torrent, "-d", run.path(f"dl-{tag}-{side}"), "--port", str(free_port()),
                "--local", "--no-dht", "--no-lsd", "--json-progress", "--peer", f"127.0.0.1:{sport}"]
        if side == "download":
            argv += ["--max-download-rate", limit]
        receivers[side] = Receiver(run, argv, f"dl-{tag}-{side}")
    deadline = time.monotonic() + MEASURE + 15
    while time.monotonic() < deadline and not all(len(r.measured()) > MEASURE + 1 for r in receivers.values()):
        time.sleep(0.5)
    for side, r in receivers.items():
        judge(run, f"--max-{side}-rate {limit}", rate, 0.10 if rate < 1024 * KIB else 0.05,
              r.measured()[:MEASURE + 2])
    for p in list(run.procs):
        run.stop(p, wait=5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = Run(args.shoal, "rate-limit")
    # Each torrent is larger than 30 s at its rate plus the tolerance can move.
    pair(run, "50k", 50 * KIB, 3 * 1024 * KIB)
    pair(run, "1m", 1024 * KIB, 48 * 1024 * KIB)
    return run.finish()


if __name__ == "__main__":
    main_guard(main)
