#!/usr/bin/python3
"""The command line's download and seed runs, against a local shoal seeder.

- Several torrents in one `download` (arguments and `-i FILE` with comments and blank
  lines): all complete in one session, one summary per torrent, exit code 0; one source
  that cannot be read fails alone (exit 1, named in the table), the others complete;
  `--select-file` with several torrents is an argument error (exit 2).
- Sizes never count BEP 47 pad files: a hybrid torrent's `info` (text and --json), the
  `start`/`progress`/`done`/`summary` events and the table all give the files' sum.
- `--json-progress`: every stdout line is a JSON object with an `event`, and no number in
  it has an exponent (parsed with hooks that see each number's literal).
- `-v` lines start with the wall-clock time (HH:MM:SS) and name the torrent.
- Ports: a busy port exits 1 naming the port and --port; `--port 0` listens on a port the
  system chose, printed as `listening on port N` (and a `listening` event).
- `seed` of partial data seeds what it has and never downloads, though a peer that has
  everything is connected to it; it says how much it seeds, and prints a summary
  (uploaded, ratio, time, peers) when stopped.

Usage: cli_transfer_test.py --shoal PATH
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess

import harness as h


def parse_lines(text):
    """Every stdout line as JSON: (objects, problems). A number written with an exponent
    or a line that is not an object with an "event" is a problem."""
    problems = []
    objs = []

    def num(lit):
        if "e" in lit.lower():
            problems.append(f"exponent in {lit}")
        return float(lit)

    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            o = json.loads(line, parse_float=num, parse_int=lambda lit: int(num(lit)) if "e" in lit.lower() else int(lit))
        except ValueError as e:
            problems.append(f"not JSON ({e}): {line[:120]}")
            continue
        if not isinstance(o, dict) or not isinstance(o.get("event"), str):
            problems.append(f"no event: {line[:120]}")
            continue
        objs.append(o)
    return objs, problems


def run_cmd(argv, timeout=120, **kw):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(argv, "timeout", e.stdout or "", e.stderr or "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "cli-transfer")
    try:
        src = run.path("src")
        # A: one file; B: a folder of three; C: a hybrid torrent of odd sizes (pad files).
        h.write_random(os.path.join(src, "alpha.bin"), 3 << 20, seed=1)
        for i, size in enumerate((700_001, 1_300_003, 250_007)):
            h.write_random(os.path.join(src, "bravo", f"part{i}.bin"), size, seed=10 + i)
        c_sizes = (123_457, 2_000_003, 77_777)
        for i, size in enumerate(c_sizes):
            h.write_random(os.path.join(src, "charlie", f"file{i}.dat"), size, seed=20 + i)
        ta, tb, tc = run.path("alpha.torrent"), run.path("bravo.torrent"), run.path("charlie.torrent")
        h.shoal_create(run, os.path.join(src, "alpha.bin"), ta, "--v1", "--piece-size", "64KiB")
        h.shoal_create(run, os.path.join(src, "bravo"), tb, "--v1", "--piece-size", "64KiB")
        h.shoal_create(run, os.path.join(src, "charlie"), tc, "--hybrid", "--piece-size", "64KiB")
        c_total = sum(c_sizes)

        # Pad files exist in the hybrid torrent, and info does not count them.
        info = json.loads(run_cmd([run.shoal, "info", "--json", tc]).stdout)
        run.check("the hybrid torrent has pad files", len(info.get("pad_files", [])) >= 1, str(info)[:300])
        run.check("info --json: total_size without pad files",
                  info.get("total_size") == c_total and info.get("event") == "info", str(info)[:300])
        text = run_cmd([run.shoal, "info", tc]).stdout
        run.check("info: total size without pad files", f"({c_total} bytes)" in text, text[:400])

        # One seeder for all three (seed takes several torrents).
        sport = h.free_port()
        seeder = run.spawn([run.shoal, "seed", ta, tb, tc, "-d", src, "--port", str(sport), "--local", "--no-dht",
                            "--no-lsd"], "seeder.log")
        run.check("seeder listening", h.wait_listening(sport), open(seeder.log).read()[-400:])
        seeder_log = h.wait_for(lambda: "listening on port" in open(seeder.log).read() and open(seeder.log).read(), 10)
        run.check("seed prints the port in use", f"listening on port {sport}" in (seeder_log or ""),
                  (seeder_log or "")[-300:])
        peer = ["--peer", f"127.0.0.1:{sport}"]
        common = ["--local", "--no-dht", "--no-lsd", "--seed-time", "0"]

        # 1. Three torrents in one run: two as arguments, one from -i with a comment and a blank line.
        lst = run.path("list.txt")
        with open(lst, "w") as f:
            f.write(f"# the third torrent\n\n   {tc}  \n")
        dst = run.path("dst")
        # Rate-limited so that it lasts a few seconds: progress lines are printed every second.
        r = run_cmd([run.shoal, "download", ta, tb, "-i", lst, "-d", dst, "--port", "0", "--json-progress", *peer,
                     *common, "--max-download-rate", "2MiB"])
        objs, problems = parse_lines(r.stdout)
        run.check("several torrents: exit code 0", r.returncode == 0, f"{r.returncode}: {r.stderr[-500:]}")
        run.check("several torrents: every file complete",
                  h.same_tree(src, dst, ["alpha.bin", "bravo/part0.bin", "bravo/part1.bin", "bravo/part2.bin",
                                         "charlie/file0.dat", "charlie/file1.dat", "charlie/file2.dat"]))
        run.check("--json-progress: every line an object with an event, no exponent", not problems and objs,
                  "; ".join(problems[:5]))
        sums = [o for o in objs if o["event"] == "summary"]
        run.check("one summary per torrent, all complete",
                  sorted(o["torrent"] for o in sums) == [1, 2, 3] and all(o["complete"] for o in sums), str(sums)[:400])
        listening = [o for o in objs if o["event"] == "listening"]
        run.check("--port 0: a listening event with the chosen port",
                  len(listening) == 1 and listening[0]["port"] > 0 and objs[0]["event"] == "listening",
                  str(objs[:2])[:300])
        last = objs[-1] if objs else {}
        run.check("the exit event says 3 of 3", last.get("event") == "exit" and last.get("completed") == 3 and
                  last.get("torrents") == 3 and last.get("exit_code") == 0, str(last))
        c_events = [o for o in objs if o.get("name") == "charlie" and "total_bytes" in o]
        run.check("pad files counted nowhere in the hybrid's events",
                  c_events and all(o["total_bytes"] == c_total for o in c_events) and
                  any(o["event"] == "progress" for o in c_events) and any(o["event"] == "done" for o in c_events),
                  str([(o["event"], o["total_bytes"]) for o in c_events])[:400])
        c_sum = next((o for o in sums if o["name"] == "charlie"), {})
        run.check("the hybrid's summary: have_bytes = total_bytes = size = the files' sum",
                  c_sum.get("have_bytes") == c_total and c_sum.get("size") == c_total, str(c_sum)[:300])
        types = {k: type(v).__name__ for o in objs if o["event"] == "progress" for k, v in o.items()}
        run.check("rates are integers", types.get("download_rate") == "int" and types.get("upload_rate") == "int",
                  str(types))

        # 2. A source that cannot be read fails alone; the table names it; exit code 1.
        dst2 = run.path("dst2")
        missing = run.path("missing.torrent")
        r = run_cmd([run.shoal, "download", ta, missing, tc, "-d", dst2, "--port", "0", *peer, *common])
        run.check("one bad source: exit code 1", r.returncode == 1, f"{r.returncode}: {r.stderr[-500:]}")
        run.check("one bad source: the others complete",
                  h.same_tree(src, dst2, ["alpha.bin", "charlie/file0.dat", "charlie/file2.dat"]))
        err = r.stderr
        run.check("the table: a header, a row per torrent, the count and the failed one",
                  re.search(r"NAME\s+SIZE\s+STATE\s+TIME\s+AVG RATE", err) is not None and
                  "2 of 3 torrents completed" in err and "missing.torrent" in err.split("completed")[-1],
                  err[-800:])
        row = next((l for l in err.splitlines() if l.startswith("charlie")), "")
        run.check("the table's size has no pad bytes (2.10 MiB, not 2.2x)", "2.10 MiB" in row and "complete" in row, row)
        run.check("listening on port N printed", re.search(r"listening on port [1-9][0-9]*", err) is not None,
                  err[:300])

        # 3. --select-file names one torrent's files: refused with several (exit 2).
        r = run_cmd([run.shoal, "download", ta, tb, "--select-file", "1", "-d", run.path("dst3"), *common])
        run.check("--select-file with several torrents: exit 2 and why", r.returncode == 2 and
                  "--select-file" in r.stderr and "download --help" in r.stderr, f"{r.returncode}: {r.stderr}")
        r = run_cmd([run.shoal, "download", "-i", run.path("nothing.txt"), "-d", run.path("dst3"), *common])
        run.check("-i of a missing file: exit 1 naming it", r.returncode == 1 and "nothing.txt" in r.stderr,
                  f"{r.returncode}: {r.stderr}")
        r = run_cmd([run.shoal, "download", "-i", "-", "-d", run.path("dst4"), "--port", "0", "-v", *peer, *common],
                    input=f"# from stdin\n{ta}\n")
        run.check("-i - reads stdin", r.returncode == 0 and h.same_tree(src, run.path("dst4"), ["alpha.bin"]),
                  f"{r.returncode}: {r.stderr[-300:]}")
        run.check("-v lines carry the wall-clock time and the torrent's name",
                  re.search(r"^\[\d\d:\d\d:\d\d\] \[alpha\.bin\] peer 127\.0\.0\.1:\d+ connected", r.stderr,
                            re.M) is not None, r.stderr[:400])

        # 4. A busy port: exit 1, the port and the flag named.
        with socket.socket() as busy:
            busy.bind(("0.0.0.0", 0))
            busy.listen()
            bport = busy.getsockname()[1]
            r = run_cmd([run.shoal, "download", ta, "-d", run.path("dst5"), "--port", str(bport), *common])
            run.check("busy port: exit 1 naming the port and --port",
                      r.returncode == 1 and f"port {bport}" in r.stderr and "--port" in r.stderr,
                      f"{r.returncode}: {r.stderr}")
            r = run_cmd([run.shoal, "download", ta, "-d", run.path("dst5"), "--port", str(bport), "--json-progress",
                         *common])
            objs, problems = parse_lines(r.stdout)
            run.check("busy port with --json-progress: an error event",
                      r.returncode == 1 and not problems and objs and objs[0]["event"] == "error" and
                      objs[0].get("port") == bport, r.stdout[-300:])

        # 5. seed of partial data: bravo without part1.bin, beside a seeder that has it all.
        # part1.bin shares a piece with each of its neighbours (64 KiB pieces, odd sizes), so
        # those two cannot be verified whole either: 3 files incomplete.
        part = run.path("partial")
        shutil.copytree(os.path.join(src, "bravo"), os.path.join(part, "bravo"))
        os.remove(os.path.join(part, "bravo", "part1.bin"))
        pseed = run.spawn([run.shoal, "seed", tb, "-d", part, "--port", "0", "--local", "--no-dht", "--no-lsd",
                           "--json-progress", *peer], "partial.log")

        def progress_lines():
            objs, _ = parse_lines("\n".join(l for l in open(pseed.log).read().splitlines() if l.startswith("{")))
            return [o for o in objs if o["event"] == "progress"]

        # Connected to the full seeder, then five more progress lines (five seconds) in which
        # the old `seed` fetched the missing file from it.
        connected = h.wait_for(lambda: [o for o in progress_lines() if o["peers"] >= 1], 30)
        run.check("partial seed: connected to a peer that has everything", bool(connected),
                  open(pseed.log).read()[-400:])
        if connected:
            n0 = len(progress_lines())
            h.wait_for(lambda: len(progress_lines()) >= n0 + 5, 20)
        prog = progress_lines()
        start = next((o for o in parse_lines("\n".join(l for l in open(pseed.log).read().splitlines()
                                                       if l.startswith("{")))[0] if o["event"] == "start"), {})
        run.check("partial seed: it starts seeding what it has",
                  start.get("state") == "seeding" and 0 < start.get("have_bytes", 0) < start.get("size", 0) and
                  start.get("files_incomplete") == 3,
                  str(start))
        run.check("partial seed: nothing downloaded",
                  prog and all(o["downloaded"] == 0 and o["state"] == "seeding" for o in prog) and
                  prog[-1]["have_bytes"] == start.get("have_bytes"), str(prog[-1:])[:300])
        size1 = os.path.getsize(os.path.join(part, "bravo", "part1.bin")) if os.path.exists(
            os.path.join(part, "bravo", "part1.bin")) else 0
        run.check("partial seed: the missing file is not fetched", size1 == 0 or not h.same_tree(
            src, part, ["bravo/part1.bin"]), str(size1))
        run.stop(pseed, signal.SIGINT)
        # The same without --json-progress says how much it seeds.
        pseed2 = run.spawn([run.shoal, "seed", tb, "-d", part, "--port", "0", "--local", "--no-dht", "--no-lsd"],
                           "partial2.log")
        said = h.wait_for(lambda: "seeding " in open(pseed2.log).read() and open(pseed2.log).read(), 20)
        run.check("partial seed: says how much of what it seeds", re.search(
            r"seeding \d+\.\d% of bravo: 3 files incomplete in ", said or "") is not None, (said or "")[-300:])
        run.stop(pseed2, signal.SIGINT)

        # 6. A download stopped part way says how much it resumes from.
        dst6 = run.path("dst6")
        part_dl = run.spawn([run.shoal, "download", ta, "-d", dst6, "--port", "0", "--json-progress",
                             "--max-download-rate", "256KiB", *peer, *common], "part-dl.log")

        def have_some():
            objs, _ = parse_lines("\n".join(l for l in open(part_dl.log).read().splitlines() if l.startswith("{")))
            return any(o["event"] == "progress" and 0 < o["have_bytes"] < o["total_bytes"] for o in objs)

        run.check("a rate-limited download under way", h.wait_for(have_some, 30), open(part_dl.log).read()[-300:])
        run.stop(part_dl, signal.SIGINT)
        r = run_cmd([run.shoal, "download", ta, "-d", dst6, "--port", "0", *peer, *common])
        m = re.search(r"alpha\.bin: resuming: (\d+\.\d)% verified", r.stderr)
        run.check("resuming: the share verified is printed",
                  r.returncode == 0 and m is not None and 0 < float(m.group(1)) < 100, r.stderr[-400:])

        # The full seeder uploaded: its summary when stopped.
        run.stop(seeder, signal.SIGINT)
        out = open(seeder.log).read()
        run.check("seed: a summary when it stops (uploaded, ratio, time, peers)",
                  re.search(r"alpha\.bin: seeded 3\.00 MiB of 3\.00 MiB: uploaded [0-9.]+ [KMG]?i?B, ratio [0-9.]+, "
                            r"for \d+:\d\d, \d+ peers at most", out) is not None, out[-600:])
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
