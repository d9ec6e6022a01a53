#!/usr/bin/env python3
"""`shoal create` walking a folder (issue 15, point 9): --exclude globs, junk and hidden files
left out by default, symlinks stored as BEP 47 symlinks in v2/hybrid torrents (read back by
shoal and by libtorrent), skipped with a warning in v1 ones, --follow-symlinks, and
mktorrent's short flags (-a, -l, -n, -c, -p, -w).
Usage: create_walk.py SHOAL"""
import json
import os
import subprocess
import sys
import tempfile

shoal = os.path.abspath(sys.argv[1])
failures = []


def check(name, cond, detail=""):
    print(("PASS: " if cond else "FAIL: ") + name + ("" if cond else f"\n  {detail}"))
    if not cond:
        failures.append(name)


def run(*args, cwd):
    return subprocess.run([shoal, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def info(path, cwd):
    r = run("info", "--json", path, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def files_of(meta):
    return {f["path"]: f for f in meta["files"]}


with tempfile.TemporaryDirectory() as work:
    d = os.path.join(work, "d")
    for sub in ("sub", ".git", ".hidden_dir", "build/obj"):
        os.makedirs(os.path.join(d, sub))
    with open(os.path.join(d, "a.bin"), "wb") as f:
        f.write(os.urandom(40000))
    files = {"sub/b.txt": "hi\n", "sub/debug.log": "log\n", ".DS_Store": "x", "Thumbs.db": "x",
             "desktop.ini": "x", "notes.txt~": "x", "x.swp": "x", ".x.swp": "x", ".git/HEAD": "ref\n",
             ".hidden_dir/f": "h\n", ".env": "secret\n", "build/obj/o.o": "o", "keep.txt": "k\n"}
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    os.symlink("a.bin", os.path.join(d, "link"))
    os.symlink("../a.bin", os.path.join(d, "sub", "up"))
    os.symlink("/etc/hostname", os.path.join(d, "outside"))

    # The default (hybrid): junk and hidden files out, --exclude by name and by path, symlinks kept as such.
    r = run("create", "--no-date", "-o", "h.torrent", "--exclude", "*.log", "--exclude", "build/*", "d", cwd=work)
    check("hybrid create exits 0", r.returncode == 0, r.stderr)
    m = info("h.torrent", work)
    fs = files_of(m)
    want = {"d/a.bin", "d/keep.txt", "d/link", "d/sub/b.txt", "d/sub/up"}
    check("hybrid: exactly the wanted files (no junk, hidden, excluded or outside link)", set(fs) == want,
          f"got {sorted(fs)}")
    check("hybrid: link is a symlink to a.bin", fs.get("d/link", {}).get("symlink_target") == "a.bin", fs.get("d/link"))
    check("hybrid: sub/up is a symlink to a.bin (resolved within the folder)",
          fs.get("d/sub/up", {}).get("symlink_target") == "a.bin", fs.get("d/sub/up"))
    check("hybrid: a symlink to outside the folder is named in a warning",
          "outside: a symlink to outside the folder, left out" in r.stderr, r.stderr)
    check("hybrid: symlinks have no size", fs.get("d/link", {}).get("size") == 0, fs.get("d/link"))

    # libtorrent reads the same symlinks.
    lt_check = subprocess.run(["/usr/bin/python3", "-c", """
import libtorrent as lt, sys
for t in sys.argv[1:]:
    ti = lt.torrent_info(t)
    fs = ti.files()
    links = {fs.file_path(i): fs.symlink(i) for i in range(fs.num_files())
             if fs.file_flags(i) & lt.file_storage.flag_symlink}
    print(t, sorted(links.items()))
""", "h.torrent"], cwd=work, capture_output=True, text=True, timeout=60)
    check("libtorrent reads the hybrid torrent's symlinks",
          lt_check.returncode == 0 and "('d/link', 'd/a.bin')" in lt_check.stdout and
          "('d/sub/up', 'd/a.bin')" in lt_check.stdout, lt_check.stdout + lt_check.stderr)

    # v2 only: the same symlinks.
    r = run("create", "--v2", "--no-date", "-o", "v2.torrent", "d", cwd=work)
    m2 = files_of(info("v2.torrent", work))
    check("v2: symlinks stored", m2.get("d/link", {}).get("symlink_target") == "a.bin" and "d/sub/up" in m2,
          sorted(m2))
    lt2 = subprocess.run(["/usr/bin/python3", "-c", """
import libtorrent as lt, sys
fs = lt.torrent_info(sys.argv[1]).files()
print(sorted(fs.file_path(i) for i in range(fs.num_files()) if fs.file_flags(i) & lt.file_storage.flag_symlink))
""", "v2.torrent"], cwd=work, capture_output=True, text=True, timeout=60)
    check("libtorrent reads the v2 torrent's symlinks", "'d/link'" in lt2.stdout and "'d/sub/up'" in lt2.stdout,
          lt2.stdout + lt2.stderr)

    # v1 only: symlinks cannot be stored: left out, one warning line each.
    r = run("create", "--v1", "--no-date", "-o", "v1.torrent", "d", cwd=work)
    m1 = files_of(info("v1.torrent", work))
    check("v1: no symlinks in the torrent", not any("symlink_target" in f for f in m1.values()) and
          "d/link" not in m1 and "d/sub/up" not in m1, sorted(m1))
    warnings = [line for line in r.stderr.splitlines() if "a symlink, left out (v1 torrents cannot hold symlinks" in line]
    check("v1: one warning a skipped symlink", len(warnings) == 3, r.stderr)
    check("v1: an excluded-by-default log is still in (only --exclude removes it)", "d/sub/debug.log" in m1, sorted(m1))

    # --follow-symlinks and --include-hidden.
    r = run("create", "--v1", "--no-date", "--follow-symlinks", "--include-hidden", "-o", "f.torrent", "d", cwd=work)
    mf = files_of(info("f.torrent", work))
    check("--follow-symlinks reads a linked file as a file", mf.get("d/link", {}).get("size") == 40000, sorted(mf))
    check("--include-hidden keeps dot-names", {"d/.git/HEAD", "d/.hidden_dir/f", "d/.env"} <= set(mf), sorted(mf))
    check("--include-hidden still leaves out junk",
          not ({"d/.DS_Store", "d/Thumbs.db", "d/desktop.ini", "d/notes.txt~", "d/x.swp", "d/.x.swp"} & set(mf)),
          sorted(mf))
    check("--follow-symlinks: no warnings", "warning" not in r.stderr, r.stderr)

    # mktorrent's short flags.
    r = run("create", "--no-date", "-a", "http://t.example/announce", "-l", "15", "-n", "renamed", "-c", "a comment",
            "-p", "-w", "http://ws.example/", "-o", "short.torrent", "d", cwd=work)
    check("short flags: exit 0", r.returncode == 0, r.stderr)
    ms = info("short.torrent", work)
    check("-a is the announce URL", ms["trackers"] == [["http://t.example/announce"]], ms["trackers"])
    check("-l 15 is 2^15 bytes", ms["piece_size"] == 32768, ms["piece_size"])
    check("-n names the torrent", ms["name"] == "renamed" and all(p.startswith("renamed/") for p in files_of(ms)),
          ms["name"])
    check("-c, -p, -w", ms["comment"] == "a comment" and ms["private"] and ms["web_seeds"] == ["http://ws.example/"],
          json.dumps(ms)[:300])
    for args, pattern in ((["-l", "13"], "--piece-length: Value 13 not in range 14 to 30"),
                          (["-l", "18", "--piece-size", "1MiB"], "give the piece size once"),
                          (["--exclud", "x"], "unknown flag --exclud; did you mean --exclude?")):
        r = run("create", *args, "d", "-o", "never.torrent", cwd=work)
        check(f"create {' '.join(args)}: exit 2 naming the problem and the help",
              r.returncode == 2 and pattern in r.stderr and "(see shoal create --help)" in r.stderr and
              not os.path.exists(os.path.join(work, "never.torrent")), f"{r.returncode} {r.stderr}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
