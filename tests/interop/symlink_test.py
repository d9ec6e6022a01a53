#!/usr/bin/python3
"""Planted symlinks inside the download folder, shoal -> shoal on loopback. For each plant,
nothing outside the download folder changes (every file there is hashed before and after),
and the download either completes inside the folder or stops with a clear error:

- a folder of the torrent (pack/sub) is a symlink to a folder outside: refused with
  "a symlink in the path", the outside folder stays empty;
- the same one level up (pack itself);
- DIR/.shoal is a symlink to outside: the data still arrives, the resume file is not
  written through the link ("cannot save resume data"), outside unchanged;
- DIR/.shoal/KEY.resume.tmp (the fixed temporary name shoal used to use) and the resume
  file's own name are symlinks to a file outside: the download completes, the resume file
  is a real file inside the folder, the outside file keeps its bytes.

Usage: symlink_test.py --shoal PATH
"""
import argparse
import hashlib
import os

import harness as h


def snapshot(folder):
    """Every path under folder with its type and content hash (symlinks not followed)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for n in dirs + files:
            p = os.path.join(root, n)
            if os.path.islink(p):
                out[p] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[p] = ("dir", None)
            else:
                with open(p, "rb") as f:
                    out[p] = ("file", hashlib.sha256(f.read()).hexdigest())
    return out


def log_text(run, log):
    return open(run.path(log), "rb").read().decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "symlink")
    try:
        src = run.path("src")
        names = ["pack/a.bin", "pack/sub/b.bin", "pack/sub/deeper/c.bin"]
        for i, n in enumerate(names):
            h.write_random(os.path.join(src, n), (1 << 20) + 1000 * i, seed=10 + i)
        t = run.path("t.torrent")
        info = h.shoal_create(run, os.path.join(src, "pack"), t, "--v1", "--piece-size", "64KiB")
        key = info.get("info_hash_v1") or info["info_hash"]
        sport = h.free_port()
        seed = h.shoal_seed(run, t, src, sport, "seed.log")
        h.wait_listening(sport)

        def download(label, plant):
            dst = run.path("dst-" + label)
            outside = run.path("outside-" + label)
            os.makedirs(dst)
            os.makedirs(outside)
            with open(os.path.join(outside, "victim"), "wb") as f:
                f.write(b"precious bytes outside the download folder\n")
            plant(dst, outside)
            before = snapshot(outside)
            rc = h.shoal_download(run, t, dst, h.free_port(), label + ".log", "-v", "--peer", f"127.0.0.1:{sport}",
                                  "--seed-time", "0", "--stop-timeout", "20", timeout=120)
            after = snapshot(outside)
            run.check(f"{label}: nothing outside the download folder changed", before == after,
                      f"before {before}\nafter {after}")
            return rc, dst, log_text(run, label + ".log")

        # A folder of the torrent planted as a symlink.
        for label, link in (("sub-link", "pack/sub"), ("top-link", "pack")):
            def plant(dst, outside, link=link):
                os.makedirs(os.path.dirname(os.path.join(dst, link)), exist_ok=True)
                os.symlink(outside, os.path.join(dst, link))
            rc, dst, log = download(label, plant)
            complete = h.same_tree(src, dst, names) and not os.path.islink(os.path.join(dst, link))
            refused = rc not in (0, "timeout") and "a symlink in the path" in log
            run.check(f"{label}: completes inside the folder or stops with a clear error", complete or refused,
                      f"exit {rc}\n" + "\n".join(log.splitlines()[-6:]))
            if not complete:
                run.check(f"{label}: the error names the file and the symlink", "cannot write pack/" in log and
                          "symlink" in log, "\n".join(log.splitlines()[-6:]))

        # DIR/.shoal planted as a symlink.
        rc, dst, log = download("shoal-dir-link", lambda dst, outside: os.symlink(outside, os.path.join(dst, ".shoal")))
        run.check("shoal-dir-link: the data still arrives", rc == 0 and h.same_tree(src, dst, names),
                  f"exit {rc}\n" + "\n".join(log.splitlines()[-6:]))
        run.check("shoal-dir-link: says the resume data could not be saved", "cannot save resume data" in log,
                  "\n".join(log.splitlines()[-6:]))

        # The resume file's temporary name and final name planted as symlinks to a file outside.
        def plant_tmp(dst, outside):
            os.makedirs(os.path.join(dst, ".shoal"))
            for n in (key + ".resume.tmp", "." + key + ".resume.tmp", key + ".resume"):
                os.symlink(os.path.join(outside, "victim"), os.path.join(dst, ".shoal", n))
        rc, dst, log = download("resume-tmp-link", plant_tmp)
        run.check("resume-tmp-link: completes", rc == 0 and h.same_tree(src, dst, names),
                  f"exit {rc}\n" + "\n".join(log.splitlines()[-6:]))
        resume = os.path.join(dst, ".shoal", key + ".resume")
        run.check("resume-tmp-link: the resume file is a real file inside the folder",
                  os.path.isfile(resume) and not os.path.islink(resume))
        leftovers = [n for n in os.listdir(os.path.join(dst, ".shoal"))
                     if n.endswith(".tmp") and not os.path.islink(os.path.join(dst, ".shoal", n))]
        run.check("resume-tmp-link: no temporary file left behind", not leftovers, str(leftovers))
        run.stop(seed)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
