#!/usr/bin/env python3
"""Scan speed and memory of `shoal sync` (issue 13): a 1 GiB folder (one file, and 256 files
of 4 MiB) hashed by `shoal sync init`, files in the page cache, three rounds each; then a
folder of many small files: the first scan, a rescan with nothing changed, and the RSS of
both. Prints one JSON line per measurement and a summary.

Usage: bench/sync_scan.py --shoal build/shoal [--work DIR] [--rounds 3] [--small-files 100000]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def run_timed(cmd):
    """Runs cmd under /usr/bin/time: (wall s, cpu s, max RSS KiB, stdout)."""
    out = subprocess.run(['/usr/bin/time', '-f', 'TIME %e %U %S %M'] + cmd, capture_output=True, text=True,
                         env=dict(os.environ, SHOAL_LOCAL='1'))
    if out.returncode != 0:
        sys.exit(f'{cmd}: exit {out.returncode}: {out.stderr}')
    line = [l for l in out.stderr.splitlines() if l.startswith('TIME ')][-1].split()
    return float(line[1]), float(line[2]) + float(line[3]), int(line[4]), out.stdout


def fill(path, size, chunk=4 << 20):
    with open(path, 'wb') as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def warm(folder):
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), 'rb') as f:
                while f.read(8 << 20):
                    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shoal', required=True)
    ap.add_argument('--work', help='a folder for the data (default: a temporary one, removed after)')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--small-files', type=int, default=100000)
    a = ap.parse_args()
    shoal = os.path.abspath(a.shoal)
    work = a.work or tempfile.mkdtemp(prefix='shoal-sync-bench-')
    os.makedirs(work, exist_ok=True)
    gib = 1 << 30
    results = []
    try:
        one = os.path.join(work, 'one')
        many = os.path.join(work, 'many')
        for d in (one, many):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        fill(os.path.join(one, 'big.bin'), gib)
        for i in range(256):
            fill(os.path.join(many, f'f{i:03d}.bin'), gib // 256)
        for name, folder in (('1 GiB, one file', one), ('1 GiB, 256 files of 4 MiB', many)):
            warm(folder)
            for r in range(a.rounds):
                shutil.rmtree(os.path.join(folder, '.shoal'), ignore_errors=True)
                wall, cpu, rss, _ = run_timed([shoal, 'sync', 'init', folder, '--json'])
                res = {'case': name, 'round': r + 1, 'bytes': gib, 'wall_s': wall, 'cpu_s': round(cpu, 3),
                       'gb_per_s_wall': round(gib / wall / 1e9, 3), 'gb_per_cpu_s': round(gib / cpu / 1e9, 3),
                       'max_rss_kib': rss}
                results.append(res)
                print(json.dumps(res), flush=True)
        shutil.rmtree(one)
        shutil.rmtree(many)

        small = os.path.join(work, 'small')
        shutil.rmtree(small, ignore_errors=True)
        per_dir = 1000
        for i in range(a.small_files):
            d = os.path.join(small, f'd{i // per_dir:04d}')
            if i % per_dir == 0:
                os.makedirs(d)
            with open(os.path.join(d, f'file-{i % per_dir:04d}.txt'), 'w') as f:
                f.write(f'x{i}')
        for step, cmd in (('first scan', 'init'), ('rescan, nothing changed', 'scan')):
            wall, cpu, rss, _ = run_timed([shoal, 'sync', cmd, small, '--json'])
            res = {'case': f'{a.small_files} small files: {step}', 'wall_s': wall, 'cpu_s': round(cpu, 3),
                   'files_per_s': round(a.small_files / wall), 'max_rss_kib': rss}
            results.append(res)
            print(json.dumps(res), flush=True)
        shutil.rmtree(small)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
