#!/usr/bin/env python3
"""Resident memory per file of a running `shoal sync` folder (issue 13's goal: under 200
bytes per file at 1,000,000 files, the sync process's RSS over the file count, after
indexing).

For each count (default 0, 100,000 and 1,000,000): makes that many files of a few bytes
in folders of 1,000, runs `shoal sync init` (timed), then `shoal sync run DIR --local
--json --port 0`, which scans before it prints its first line; waits for that line, then
for 3 s in which the process takes no CPU, and reads VmRSS, RssAnon, RssFile and VmHWM from
/proc/PID/status. Reports RSS / files, and the growth between counts per file added (which
leaves out the fixed part: code, libraries, buffers).

Usage: bench/sync_memory.py --shoal build/shoal [--counts 0,100000,1000000] [--work DIR]
                            [--json FILE]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CLK = os.sysconf('SC_CLK_TCK')


def status(pid):
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'RssAnon', 'RssFile', 'RssShmem', 'VmHWM'):
                out[k] = int(v.split()[0]) * 1024
    return out


def cpu(pid):
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK


def make_files(folder, count, per_dir=1000):
    os.makedirs(folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range((count + per_dir - 1) // per_dir):
        sub = os.path.join(folder, 'd%04d' % d)
        os.mkdir(sub)
        for i in range(min(per_dir, count - d * per_dir)):
            fd = os.open(os.path.join(sub, 'f%04d' % i), flags, 0o644)
            os.write(fd, b'%d' % (d * per_dir + i))
            os.close(fd)


def measure(shoal, work, count):
    folder = os.path.join(work, 'f%d' % count)
    shutil.rmtree(folder, ignore_errors=True)
    t = time.monotonic()
    make_files(folder, count)
    made = time.monotonic() - t
    env = dict(os.environ, SHOAL_LOCAL='1')
    t = time.monotonic()
    p = subprocess.Popen(['/usr/bin/time', '-f', 'TIME %e %U %S %M', shoal, 'sync', 'init', folder, '--json'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate()
    if p.returncode != 0:
        sys.exit('sync init: ' + err.decode(errors='replace'))
    init = json.loads(out)
    tl = [l for l in err.decode().splitlines() if l.startswith('TIME ')][-1].split()
    res = {'files': count, 'make_s': round(made, 1), 'init_s': float(tl[1]),
           'init_cpu_s': round(float(tl[2]) + float(tl[3]), 2), 'init_max_rss': int(tl[4]) * 1024,
           'files_hashed': init['files_hashed']}
    run = subprocess.Popen([shoal, 'sync', 'run', folder, '--local', '--json', '--port', '0'], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, env=env)
    try:
        t = time.monotonic()
        first = json.loads(run.stdout.readline())
        if first.get('event') != 'listening':
            sys.exit('sync run: first line %r' % first)
        res['run_start_s'] = round(time.monotonic() - t, 2)
        # settled: 3 s in a row without CPU (at most 60 s)
        quiet, last, deadline = 0, cpu(run.pid), time.monotonic() + 60
        while quiet < 3 and time.monotonic() < deadline:
            time.sleep(1)
            now = cpu(run.pid)
            quiet = quiet + 1 if now - last < 0.02 else 0
            last = now
        st = status(run.pid)
        res.update({'rss': st['VmRSS'], 'rss_anon': st['RssAnon'], 'rss_file': st['RssFile'], 'hwm': st['VmHWM'],
                    'run_cpu_s': round(cpu(run.pid), 2), 'pid': run.pid})
        if count:
            res['rss_per_file'] = round(st['VmRSS'] / count, 1)
            res['anon_per_file'] = round(st['RssAnon'] / count, 1)
        index = os.path.join(folder, '.shoal')
        res['index_bytes'] = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(index) for n in ns)
        return res, run
    except BaseException:
        run.kill()
        run.wait()
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shoal', required=True)
    ap.add_argument('--counts', default='0,100000,1000000')
    ap.add_argument('--work', help='folder for the files (default: a temporary one, removed after)')
    ap.add_argument('--json', help='write the results to this file')
    ap.add_argument('--hold', action='store_true',
                    help='keep each `sync run` until Enter is pressed (to attach a profiler)')
    a = ap.parse_args()
    shoal = os.path.abspath(a.shoal)
    work = a.work or tempfile.mkdtemp(prefix='shoal-sync-memory-')
    os.makedirs(work, exist_ok=True)
    results = []
    try:
        for count in [int(c) for c in a.counts.split(',')]:
            res, run = measure(shoal, work, count)
            if a.hold:
                input('sync run is pid %d; Enter to go on ' % run.pid)
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=60)
            del res['pid']
            results.append(res)
            print(json.dumps(res), flush=True)
            shutil.rmtree(os.path.join(work, 'f%d' % count), ignore_errors=True)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print('| files | sync init | RSS running | of it anonymous | RSS per file | growth per file added |')
    print('|---|---|---|---|---|---|')
    prev = None
    for r in results:
        growth = '-'
        if prev is not None and r['files'] > prev['files']:
            growth = '%.0f B' % ((r['rss'] - prev['rss']) / (r['files'] - prev['files']))
        print('| {:,} | {:.1f} s | {:.1f} MiB | {:.1f} MiB | {} | {} |'.format(
            r['files'], r['init_s'], r['rss'] / 2**20, r['rss_anon'] / 2**20,
            '%.0f B' % r['rss_per_file'] if r['files'] else '-', growth))
        prev = r
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
