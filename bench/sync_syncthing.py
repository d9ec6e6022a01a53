#!/usr/bin/env python3
"""`shoal sync` beside Syncthing (issue 13), on loopback, in one run: two devices of each,
one process per device, the same data.

Cases (each repeated --runs times; median and min-max reported):
  small   initial sync of 10,000 files of random size around 10 KiB (~100 MB in all) in
          10 folders, then a one-byte edit of one small file;
  big     initial sync of one 1 GiB file of random data, then a one-byte edit in its middle;
  scan    the first scan of a 1 GiB folder (256 files of 4 MiB) by one device.

The clock of an initial sync starts before `shoal sync init` (shoal) and before Syncthing
starts with the folder in its configuration (Syncthing), so the hashing counts; it stops
when the receiver has every file (shoal: its `sync` lines on stdout name every path;
Syncthing: the receiver's /rest/db/status has every file local and nothing needed). An
edit's clock starts at the write and stops when the receiver's copy of the file has the
new byte (read every 10 ms). After every case both trees are compared byte for byte (the
case fails otherwise). Scan: shoal's time is what `sync init --json` reports, Syncthing's
the `duration` of its scanning -> idle StateChanged event.

Syncthing runs headless with its own home folders under the work folder: GUI/REST on
127.0.0.1 with an API key, listening on tcp://127.0.0.1 only, no discovery, relays, NAT,
usage reporting, crash reporting or upgrades, not at lowered priority, the file watcher on
with a 1 s delay (fsWatcherDelayS=1; shoal's debounce is 1 s too). CPU time (user + sys)
and peak RSS (VmHWM) of every process are read from /proc at the end of the initial sync;
for shoal, `sync init` and `sync join` are added (their rusage).

Usage: bench/sync_syncthing.py --shoal build/shoal [--runs 3] [--cases small,big,scan]
                               [--work DIR] [--json FILE] [--syncthing syncthing]
                               [--small-files 10000] [--big-mib 1024] [--scan-mib 1024]
With --work DIR the generated data stays there and is used again by the next run; each
tool's log goes to DIR too (Syncthing's as st-a-CASE.log, st-b-CASE.log).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

CLK = os.sysconf('SC_CLK_TCK')
SKIP = {'.shoal', '.stfolder', '.stignore', '.stversions'}


def fail(msg):
    raise RuntimeError(msg)


def wait_until(cond, what, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    fail('timed out (%.0f s) waiting for %s' % (timeout, what))


def proc_cpu(pid):
    """user + system CPU seconds of a live process."""
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK


def proc_kib(pid, key):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def run_rusage(cmd, stdin=None):
    """Runs cmd to its end: (stdout, cpu s, max RSS KiB)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=dict(os.environ, SHOAL_LOCAL='1'))
    if stdin:
        p.stdin.write(stdin)
        p.stdin.close()
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        fail('%s: exit %d: %s' % (' '.join(cmd), p.returncode, err.decode(errors='replace')))
    return out, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


class Proc:
    """A long-running process; its stdout lines are kept with the time each arrived."""

    def __init__(self, cmd, log, env=None):
        self.log = open(log, 'wb')
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line))
                self.cond.notify_all()

    def cpu(self):
        return proc_cpu(self.p.pid)

    def hwm(self):
        return proc_kib(self.p.pid, 'VmHWM')

    def stop(self, dump=None):
        """Stops the process; dump: a file to write its stdout lines to."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        if dump:
            with open(dump, 'wb') as f:
                f.writelines(line for _, line in self.lines)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def walk_files(folder):
    """relative path -> size of every regular file, the tools' own folders left out."""
    out = {}
    for root, dirs, files in os.walk(folder):
        if root == folder:
            dirs[:] = [d for d in dirs if d not in SKIP]
        for n in files:
            if root == folder and n in SKIP:
                continue
            if n.startswith('.syncthing.') and n.endswith('.tmp'):
                continue
            p = os.path.join(root, n)
            out[os.path.relpath(p, folder)] = os.lstat(p).st_size
    return out


def digest(folder):
    out = {}
    for rel in walk_files(folder):
        h = hashlib.sha256()
        with open(os.path.join(folder, rel), 'rb') as f:
            while True:
                b = f.read(8 << 20)
                if not b:
                    break
                h.update(b)
        out[rel] = h.hexdigest()
    return out


def check_same(a, b, what):
    da, db = digest(a), digest(b)
    if da != db:
        only_a = sorted(set(da.items()) - set(db.items()))[:5]
        only_b = sorted(set(db.items()) - set(da.items()))[:5]
        fail('%s: trees differ: only in sender %r, only in receiver %r' % (what, only_a, only_b))
    return len(da)


def make_data(work, rng, cases, small_files, big_mib, scan_mib):
    small = os.path.join(work, 'data-small-%d' % small_files)
    big = os.path.join(work, 'data-big-%d' % big_mib)
    scan = os.path.join(work, 'data-scan-%d' % scan_mib)
    if 'small' in cases and not os.path.isdir(small):
        tmp = small + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        for i in range(small_files):
            d = os.path.join(tmp, 'dir%02d' % (i % 10))
            if i < 10:
                os.makedirs(d)
            with open(os.path.join(d, 'file%05d.bin' % i), 'wb') as f:
                f.write(rng.randbytes(rng.randint(5120, 15360)))
        os.rename(tmp, small)
    for case, folder, count, size in (('big', big, 1, big_mib << 20), ('scan', scan, 256, (scan_mib << 20) // 256)):
        if case not in cases or os.path.isdir(folder):
            continue
        tmp = folder + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for i in range(count):
            name = 'big.bin' if count == 1 else 'part%03d.bin' % i
            with open(os.path.join(tmp, name), 'wb') as f:
                left = size
                while left:
                    n = min(left, 16 << 20)
                    f.write(os.urandom(n))
                    left -= n
        os.rename(tmp, folder)
    return {'small': small, 'big': big, 'scan': scan}


def copy_data(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


def edit_one_byte(src, dst, rel, offset, timeout=120.0):
    """Writes one new byte at offset of src/rel; seconds until dst/rel shows it."""
    with open(os.path.join(src, rel), 'rb') as f:
        f.seek(offset)
        old = f.read(1)
    new = bytes([(old[0] + 1) & 0xff])
    target = os.path.join(dst, rel)
    t0 = time.monotonic()
    fd = os.open(os.path.join(src, rel), os.O_WRONLY)
    os.pwrite(fd, new, offset)
    os.close(fd)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        try:
            fd = os.open(target, os.O_RDONLY)
            try:
                got = os.pread(fd, 1, offset)
            finally:
                os.close(fd)
            if got == new:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.01)
    fail('one-byte edit of %s did not arrive in %.0f s' % (rel, timeout))


def pick_edit(case, files, rng):
    if case == 'big':
        return 'big.bin', files['big.bin'] // 2 + 12345
    rel = sorted(files)[rng.randrange(len(files))]
    return rel, files[rel] // 2


# ---------------------------------------------------------------- shoal


def shoal_sync(shoal, data, work, case, rng, timeout):
    src, dst = os.path.join(work, 'shoal-a'), os.path.join(work, 'shoal-b')
    copy_data(data, src)
    shutil.rmtree(dst, ignore_errors=True)
    files = walk_files(src)
    env = dict(os.environ, SHOAL_LOCAL='1')
    a = b = None
    try:
        t0 = time.monotonic()
        out, init_cpu, init_rss = run_rusage([shoal, 'sync', 'init', src, '--json'])
        keys = json.loads(out)
        _, join_cpu, _ = run_rusage([shoal, 'sync', 'join', dst, '-', '--json'],
                                    stdin=(keys['read_write_key'] + '\n').encode())
        a = Proc([shoal, 'sync', 'run', src, '--local', '--json', '--port', '0'], os.path.join(work, 'shoal-a.err'),
                 env)
        first = wait_until(lambda: a.lines and a.lines[0][1], 'shoal A to listen', 30)
        port = json.loads(first)['port']
        b = Proc([shoal, 'sync', 'run', dst, '--local', '--json', '--peer', '127.0.0.1:%d' % port],
                 os.path.join(work, 'shoal-b.err'), env)
        want = set(files)
        state = {'next': 0, 'got': set(), 'last': None}

        def done():
            lines = list(b.lines)
            for t, line in lines[state['next']:]:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get('event') == 'sync' and ev.get('path') in want:
                    state['got'].add(ev['path'])
                    state['last'] = t
            state['next'] = len(lines)
            return state['last'] if state['got'] == want else None

        t1 = wait_until(done, 'shoal B to have every file', timeout, 0.1)
        res = {'seconds': t1 - t0, 'cpu_a': a.cpu() + init_cpu, 'cpu_b': b.cpu() + join_cpu,
               'rss_a_kib': max(a.hwm(), init_rss), 'rss_b_kib': b.hwm()}
        wait_until(lambda: walk_files(dst) == files, 'shoal B tree (names, sizes)', 60)
        res['files'] = check_same(src, dst, 'shoal %s initial sync' % case)
        rel, off = pick_edit(case, files, rng)
        res['edit_seconds'] = edit_one_byte(src, dst, rel, off)
        wait_until(lambda: digest(src) == digest(dst), 'shoal trees equal after the edit', 60, 0.5)
        return res
    finally:
        for p in (b, a):
            if p:
                p.stop()
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)


def shoal_scan(shoal, data, work):
    src = os.path.join(work, 'shoal-scan')
    copy_data(data, src)
    try:
        for root, _, names in os.walk(src):  # in the page cache, as for Syncthing's copy
            for n in names:
                with open(os.path.join(root, n), 'rb') as f:
                    while f.read(8 << 20):
                        pass
        out, cpu, rss = run_rusage([shoal, 'sync', 'init', src, '--json'])
        j = json.loads(out)
        return {'seconds': j['seconds'], 'bytes': j['bytes_hashed'], 'cpu': cpu, 'rss_kib': rss}
    finally:
        shutil.rmtree(src, ignore_errors=True)


# ---------------------------------------------------------------- Syncthing


class Syncthing:
    def __init__(self, exe, home, name):
        self.exe, self.home, self.name = exe, home, name
        shutil.rmtree(home, ignore_errors=True)
        out = subprocess.run([exe, 'generate', '--home=' + home, '--no-default-folder', '--skip-port-probing'],
                             capture_output=True, text=True, check=True)
        ids = [l.split('Device ID:')[1].strip() for l in (out.stdout + out.stderr).splitlines() if 'Device ID:' in l]
        if not ids:
            fail('syncthing generate printed no device id: ' + out.stdout + out.stderr)
        self.id = ids[0]
        self.port = free_port()
        self.gui = free_port()
        self.key = 'bench-%s-%d' % (name, random.randrange(1 << 30))
        self.proc = None

    def configure(self, folder, peers):
        path = os.path.join(self.home, 'config.xml')
        tree = ET.parse(path)
        root = tree.getroot()
        me = root.find('device')
        me.set('name', self.name)
        me.find('address').text = 'tcp://127.0.0.1:%d' % self.port
        for p, dial in peers:
            # only one side dials (as with shoal, where B is given A's address): two devices
            # dialling each other at once can lose a connection to the race and wait to retry
            d = ET.fromstring(ET.tostring(me))
            d.set('id', p.id)
            d.set('name', p.name)
            d.find('address').text = 'tcp://127.0.0.1:%d' % p.port if dial else 'dynamic'
            root.insert(list(root).index(me) + 1, d)
        gui = root.find('gui')
        gui.find('address').text = '127.0.0.1:%d' % self.gui
        gui.find('apikey').text = self.key
        o = root.find('options')
        for k, v in (('listenAddress', 'tcp://127.0.0.1:%d' % self.port), ('globalAnnounceEnabled', 'false'),
                     ('localAnnounceEnabled', 'false'), ('relaysEnabled', 'false'), ('natEnabled', 'false'),
                     ('urAccepted', '-1'), ('autoUpgradeIntervalH', '0'), ('startBrowser', 'false'),
                     ('crashReportingEnabled', 'false'), ('setLowPriority', 'false')):
            o.find(k).text = v
        f = ET.fromstring(ET.tostring(root.find('defaults').find('folder')))
        f.set('id', 'bench')
        f.set('label', 'bench')
        f.set('path', folder)
        f.set('fsWatcherEnabled', 'true')
        f.set('fsWatcherDelayS', '1')
        for p, _ in peers:
            d = ET.fromstring(ET.tostring(f.find('device')))
            d.set('id', p.id)
            f.insert(list(f).index(f.find('device')) + 1, d)
        f.find('device').set('id', self.id)
        root.insert(0, f)
        tree.write(path)
        os.makedirs(os.path.join(folder, '.stfolder'), exist_ok=True)

    def start(self, log):
        # STMONITORED: run as the one process (no monitor parent), so /proc shows its own CPU and RSS
        env = dict(os.environ, STMONITORED='yes', STNORESTART='1', STNOUPGRADE='1', STNODEFAULTFOLDER='1')
        self.log = log
        self.proc = Proc([self.exe, 'serve', '--home=' + self.home, '--no-browser', '--no-restart', '--no-upgrade'],
                         log + '.stderr', env)

    def rest(self, path, timeout=5):
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (self.gui, path), headers={'X-API-Key': self.key})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def try_rest(self, path):
        try:
            return self.rest(path)
        except (OSError, ValueError):
            return None

    def scan_durations(self):
        """Seconds of every scanning -> (something else) change of the folder, from its events."""
        # the default subscription (no events= filter) exists from startup; a filtered one
        # would only see what happens after it is first asked for
        evs = self.try_rest('/rest/events?since=0&timeout=1') or []
        return [e['data'].get('duration') for e in evs
                if e.get('type') == 'StateChanged' and e.get('data', {}).get('folder') == 'bench' and
                e['data'].get('from') == 'scanning' and e['data'].get('duration') is not None]


def syncthing_sync(exe, data, work, case, rng, timeout):
    src, dst = os.path.join(work, 'st-a'), os.path.join(work, 'st-b')
    copy_data(data, src)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    files = walk_files(src)
    a = Syncthing(exe, os.path.join(work, 'st-home-a'), 'a')
    b = Syncthing(exe, os.path.join(work, 'st-home-b'), 'b')
    try:
        a.configure(src, [(b, False)])
        b.configure(dst, [(a, True)])
        n = len(files)
        t0 = time.monotonic()
        a.start(os.path.join(work, 'st-a-%s.log' % case))
        b.start(os.path.join(work, 'st-b-%s.log' % case))

        def done():
            s = b.try_rest('/rest/db/status?folder=bench')
            return (s and s.get('state') == 'idle' and s.get('globalFiles') == n and s.get('localFiles') == n and
                    s.get('needTotalItems') == 0)

        wait_until(done, 'Syncthing B to have every file', timeout)
        t1 = time.monotonic()
        res = {'seconds': t1 - t0, 'cpu_a': a.proc.cpu(), 'cpu_b': b.proc.cpu(), 'rss_a_kib': a.proc.hwm(),
               'rss_b_kib': b.proc.hwm()}
        wait_until(lambda: walk_files(dst) == files, 'Syncthing B tree (names, sizes)', 60)
        res['files'] = check_same(src, dst, 'Syncthing %s initial sync' % case)
        res['scan_a_seconds'] = sum(a.scan_durations())
        rel, off = pick_edit(case, files, rng)
        res['edit_seconds'] = edit_one_byte(src, dst, rel, off)
        wait_until(lambda: digest(src) == digest(dst), 'Syncthing trees equal after the edit', 60, 0.5)
        return res
    finally:
        for s in (b, a):
            if s.proc:
                s.proc.stop(s.log)
        for d in (src, dst, a.home, b.home):
            shutil.rmtree(d, ignore_errors=True)


def syncthing_scan(exe, data, work):
    src = os.path.join(work, 'st-scan')
    copy_data(data, src)
    a = Syncthing(exe, os.path.join(work, 'st-home-scan'), 'scan')
    try:
        for root, _, names in os.walk(src):
            for n in names:
                with open(os.path.join(root, n), 'rb') as f:
                    while f.read(8 << 20):
                        pass
        a.configure(src, [])
        n = len(walk_files(src))
        a.start(os.path.join(work, 'st-scan.log'))

        def idle():
            s = a.try_rest('/rest/db/status?folder=bench')
            return s and s.get('state') == 'idle' and s.get('localFiles') == n

        wait_until(idle, 'Syncthing to scan the folder', 300)
        cpu = a.proc.cpu()
        durations = a.scan_durations()
        if not durations:
            fail('Syncthing reported no scanning -> idle event')
        s = a.rest('/rest/db/status?folder=bench')
        return {'seconds': sum(durations), 'bytes': s['localBytes'], 'cpu_process': cpu, 'rss_kib': a.proc.hwm()}
    finally:
        if a.proc:
            a.proc.stop(a.log)
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(a.home, ignore_errors=True)


# ---------------------------------------------------------------- report


def summary(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {'median': statistics.median(vals), 'min': min(vals), 'max': max(vals)}


def fmt(s, unit='s', digits=2):
    if not s:
        return '-'
    if s['min'] == s['max']:
        return '%.*f %s' % (digits, s['median'], unit)
    return '%.*f %s (%.*f-%.*f)' % (digits, s['median'], unit, digits, s['min'], digits, s['max'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shoal', required=True)
    ap.add_argument('--syncthing', default='syncthing')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--cases', default='small,big,scan')
    ap.add_argument('--work', help='folder for data and devices (default: a temporary one, removed after)')
    ap.add_argument('--json', help='write every result and the summary to this file')
    ap.add_argument('--timeout', type=float, default=600)
    ap.add_argument('--seed', type=int, default=13)
    ap.add_argument('--small-files', type=int, default=10000, help='files of the small case (default 10000)')
    ap.add_argument('--big-mib', type=int, default=1024, help='size of the big case\'s file (default 1024)')
    ap.add_argument('--scan-mib', type=int, default=1024, help='size of the scanned folder (default 1024)')
    a = ap.parse_args()
    shoal = os.path.abspath(a.shoal)
    exe = shutil.which(a.syncthing)
    if not exe:
        sys.exit('syncthing not found (Debian: apt-get install syncthing; scripts/install-deps does)')
    version = subprocess.run([exe, '--version'], capture_output=True, text=True).stdout.strip()
    cases = [c for c in a.cases.split(',') if c]
    work = a.work or tempfile.mkdtemp(prefix='shoal-vs-syncthing-')
    os.makedirs(work, exist_ok=True)
    rng = random.Random(a.seed)
    raw = []
    load_before = open('/proc/loadavg').read().split()[:3]
    try:
        data = make_data(work, rng, cases, a.small_files, a.big_mib, a.scan_mib)
        for r in range(a.runs):
            for case in cases:
                # alternate which tool goes first, so neither always meets a warmer or busier machine
                order = ['shoal', 'syncthing'] if r % 2 == 0 else ['syncthing', 'shoal']
                for tool in order:
                    load = float(open('/proc/loadavg').read().split()[0])
                    if case == 'scan':
                        res = shoal_scan(shoal, data['scan'], work) if tool == 'shoal' else syncthing_scan(
                            exe, data['scan'], work)
                    elif tool == 'shoal':
                        res = shoal_sync(shoal, data[case], work, case, rng, a.timeout)
                    else:
                        res = syncthing_sync(exe, data[case], work, case, rng, a.timeout)
                    res.update({'tool': tool, 'case': case, 'run': r + 1, 'load1': load})
                    raw.append(res)
                    print(json.dumps(res), flush=True)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    load_after = open('/proc/loadavg').read().split()[:3]

    def col(tool, case, key, f=lambda x: x):
        return summary([f(r) for r in raw if r['tool'] == tool and r['case'] == case and key in r])

    rows = []
    summ = {}
    for case in cases:
        for tool in ('shoal', 'syncthing'):
            if case == 'scan':
                s = {'seconds': col(tool, case, 'seconds', lambda r: r['seconds']),
                     'gb_per_s': col(tool, case, 'seconds', lambda r: r['bytes'] / r['seconds'] / 1e9),
                     'rss_mib': col(tool, case, 'rss_kib', lambda r: r['rss_kib'] / 1024)}
            else:
                s = {'seconds': col(tool, case, 'seconds', lambda r: r['seconds']),
                     'edit_seconds': col(tool, case, 'edit_seconds', lambda r: r['edit_seconds']),
                     'cpu_a': col(tool, case, 'cpu_a', lambda r: r['cpu_a']),
                     'cpu_b': col(tool, case, 'cpu_b', lambda r: r['cpu_b']),
                     'rss_a_mib': col(tool, case, 'rss_a_kib', lambda r: r['rss_a_kib'] / 1024),
                     'rss_b_mib': col(tool, case, 'rss_b_kib', lambda r: r['rss_b_kib'] / 1024)}
            summ['%s/%s' % (case, tool)] = s
    print()
    print('%s; %d run(s); load average before %s, after %s' % (version, a.runs, ' '.join(load_before),
                                                               ' '.join(load_after)))
    print()
    print('| case | tool | initial sync | one-byte edit | CPU sender | CPU receiver | peak RSS sender | '
          'peak RSS receiver |')
    print('|---|---|---|---|---|---|---|---|')
    names = {'small': '%d files, ~%d MB' % (a.small_files, a.small_files // 100), 'big': 'one %d MiB file' % a.big_mib}
    for case in cases:
        if case == 'scan':
            continue
        for tool in ('shoal', 'syncthing'):
            s = summ['%s/%s' % (case, tool)]
            print('| %s | %s | %s | %s | %s | %s | %s | %s |' %
                  (names[case], tool, fmt(s['seconds']), fmt(s['edit_seconds']), fmt(s['cpu_a']), fmt(s['cpu_b']),
                   fmt(s['rss_a_mib'], 'MiB', 1), fmt(s['rss_b_mib'], 'MiB', 1)))
        sh, st = summ[case + '/shoal'], summ[case + '/syncthing']
        if sh['seconds'] and st['seconds']:
            print('| %s | shoal/Syncthing | %.2f | %.2f | | | | |' %
                  (names[case], sh['seconds']['median'] / st['seconds']['median'],
                   sh['edit_seconds']['median'] / st['edit_seconds']['median']))
    if 'scan' in cases:
        print()
        print('| %d MiB in 256 files, first scan | time | GB/s | peak RSS |' % a.scan_mib)
        print('|---|---|---|---|')
        for tool in ('shoal', 'syncthing'):
            s = summ['scan/' + tool]
            print('| %s | %s | %s | %s |' % (tool, fmt(s['seconds']), fmt(s['gb_per_s'], 'GB/s'),
                                             fmt(s['rss_mib'], 'MiB', 1)))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'syncthing': version, 'runs': a.runs, 'load_before': load_before, 'load_after': load_after,
                       'results': raw, 'summary': summ}, f, indent=1)


if __name__ == '__main__':
    main()
