"""Shared pieces of the interop tests: processes that are always cleaned up, free
ports, test data, torrents, opentracker, and running shoal and libtorrent peers.

Every process binds to loopback (or a network namespace the test makes); nothing
leaves the machine. Tests run with SHOAL_LOCAL=1.
"""
import filecmp
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LT_PEER = os.path.join(HERE, "lt_peer.py")
PY = "/usr/bin/python3"  # the interpreter that has libtorrent


class Run:
    """A test run: a scratch folder, tracked processes, PASS/FAIL counting."""

    def __init__(self, shoal, name):
        self.shoal = os.path.abspath(shoal)
        self.dir = tempfile.mkdtemp(prefix=f"shoal-{name}-")
        self.procs = []
        self.passed = 0
        self.failed = 0
        os.environ["SHOAL_LOCAL"] = "1"
        # Under an ASan/UBSan build of shoal, every report from every shoal this run starts
        # (spawned, run to completion, inside a namespace) lands in a file here, which
        # finish() turns into a failed check: a report on stderr alone could go unread.
        self.sanitizer_prefix = os.path.join(self.dir, "sanitizer")
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            opts = [o for o in os.environ.get(var, "").split(":") if o and not o.startswith("log_path=")]
            os.environ[var] = ":".join(opts + [f"log_path={self.sanitizer_prefix}"])

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def check(self, name, ok, detail=""):
        print(("PASS" if ok else "FAIL") + f": {name}" + ("" if ok or not detail else f": {detail}"), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def spawn(self, argv, log, **kw):
        f = open(self.path(log), "wb")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        p.log = self.path(log)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=15):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def sanitizer_reports(self):
        out = []
        if not os.path.isdir(self.dir):
            return out
        for f in sorted(os.listdir(self.dir)):
            if f.startswith("sanitizer."):
                out.append((f, open(os.path.join(self.dir, f), "rb").read().decode("utf-8", "replace")))
        return out

    def finish(self):
        for p in self.procs:
            self.stop(p, wait=5)
        reports = self.sanitizer_reports()
        if reports:
            for name, text in reports:
                print(f"--- {name}\n" + "\n".join(text.splitlines()[:80]))
            self.check("no sanitizer reports from shoal", False, f"{len(reports)} report file(s), above")
        if not self.passed and not self.failed:
            # A script that checked nothing proved nothing: an early return or a skipped
            # section must not read as a pass.
            self.check("the script ran at least one check", False)
        if self.failed:
            for p in self.procs:
                try:
                    tail = open(p.log, "rb").read()[-1500:].decode("utf-8", "replace")
                    print(f"--- {p.log} (tail)\n{tail}")
                except OSError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


_handed_out = set()


def free_port():
    """A TCP and UDP port that is free on loopback right now, and never the same one twice
    in a run (two callers that bind later would otherwise race for it)."""
    while True:
        port = random.randint(20000, 60000)
        if port in _handed_out:
            continue
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
                _handed_out.add(port)
                return port
            except OSError:
                continue


def write_random(path, size, seed=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def same_tree(a, b, names):
    """True if every listed relative path has identical bytes under a and b."""
    for n in names:
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        if not os.path.exists(pb) or not filecmp.cmp(pa, pb, shallow=False):
            return False
    return True


def shoal_create(run, src, out, *extra):
    r = subprocess.run([run.shoal, "create", src, "-o", out, "--no-date", "-f", "--json", *extra],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def start_opentracker(run, info_hashes):
    """opentracker in whitelist mode on loopback (HTTP and UDP on one port)."""
    wl = run.path("whitelist.txt")
    with open(wl, "w") as f:
        f.write("".join(h + "\n" for h in info_hashes))
    os.chmod(wl, 0o644)
    os.chmod(run.dir, 0o755)
    port = free_port()
    p = run.spawn(["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-w", wl,
                   "-u", "nobody", "-d", "/"], "opentracker.log")
    deadline = time.time() + 10
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return port
        time.sleep(0.05)
    raise RuntimeError("opentracker did not start")


def shoal_seed(run, torrent, folder, port, log, *extra):
    return run.spawn([run.shoal, "seed", torrent, "-d", folder, "--port", str(port), "--local", *extra], log)


def shoal_download(run, torrent, folder, port, log, *extra, background=False, timeout=180):
    argv = [run.shoal, "download", torrent, "-d", folder, "--port", str(port), "--local", "--json-progress", *extra]
    if background:
        return run.spawn(argv, log)
    with open(run.path(log), "wb") as f:
        try:
            p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
            return p.returncode
        except subprocess.TimeoutExpired:
            return "timeout"


def summary(run, log):
    """The JSON summary line shoal prints at the end of a download."""
    for line in reversed(open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()):
        if line.startswith("{") and '"event":"summary"' in line:
            return json.loads(line)
    return None


def lt_peer(run, mode, torrent, folder, port, log, peers=(), seconds=170, utp=False, linger=0, max_upload=0,
            dht_bootstrap=(), extra=()):
    argv = [PY, LT_PEER, mode, torrent, folder, "--port", str(port), "--seconds", str(seconds),
            "--linger", str(linger), "--max-upload", str(max_upload)]
    for p in peers:
        argv += ["--peer", p]
    for b in dht_bootstrap:
        argv += ["--dht-bootstrap", b]
    if utp:
        argv.append("--utp")
    argv += list(extra)
    return run.spawn(argv, log)


def lt_result(p, timeout=180):
    """Waits for a libtorrent peer; returns (exit code, last JSON lines)."""
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        return "timeout", []
    lines = [json.loads(l) for l in open(p.log, "rb").read().decode().splitlines() if l.startswith("{")]
    return p.returncode, lines


def wait_lt_seeding(p, timeout=30):
    """Waits until a libtorrent peer (lt_peer.py) reports its torrent checked and seeding:
    before that it resets every connection for the torrent. True if it did in time."""
    return wait_for(lambda: '"state": "seeding"' in open(p.log, "rb").read().decode("utf-8", "replace"),
                    timeout, step=0.1)


def wait_dht_peer(run, info_hash, peer, bootstrap, timeout=90):
    """Polls `shoal dht get-peers` until another node's lookup finds peer ("HOST:PORT")
    announced under info_hash: a test starts the side that looks the swarm up only then,
    not after a fixed sleep. True if it was found in time."""
    def found():
        r = subprocess.run([run.shoal, "dht", "get-peers", info_hash, "--local", "--json", "--dht-bootstrap",
                            bootstrap], capture_output=True, text=True, timeout=60)
        return r.returncode == 0 and peer in json.loads(r.stdout).get("peers", [])
    return wait_for(found, timeout, step=2)


def wait_listening(port, timeout=30, host="127.0.0.1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.05)
    return False


def require_root(what):
    """True when running as root; otherwise prints why the test fails (a skip would read
    as a pass under ctest) and returns False."""
    if os.geteuid() == 0:
        return True
    print(f"FAIL: needs root for {what} (run the tests as root, as CI does)")
    return False


def wait_for(pred, timeout, step=0.25):
    """Polls pred() until it returns something true or timeout seconds pass; returns the
    last value. Tests wait for a state this way, never for a fixed time."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def json_lines(path):
    """The JSON objects of a log's lines that start with '{' (a `--json` process's output,
    perhaps mixed with stderr lines); [] while the file does not exist."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def browser_tools_ready(run):
    """Checks that Chromium, ffmpeg and playwright-core (the web UI tests' tools) are there."""
    web = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web")
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/ffmpeg", os.path.join(web, "node_modules", "playwright-core"))
               if not os.path.exists(p)]
    return run.check("Chromium, ffmpeg and playwright-core are installed (scripts/install-deps)", not missing,
                     f"missing: {missing}")


def make_webm(run, path, seconds):
    """A VP9/Opus WebM of `seconds` (a test pattern, a 440 Hz tone; about 70 kB/s) made by
    ffmpeg, which every Chromium build plays. True if it was made."""
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
                        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                        "-c:v", "libvpx-vp9", "-b:v", "500k", "-deadline", "realtime", "-cpu-used", "8",
                        "-g", "50", "-c:a", "libopus", "-b:a", "48k", path],
                       capture_output=True, text=True, timeout=300)
    return run.check("ffmpeg made the WebM", r.returncode == 0 and os.path.exists(path), r.stderr[-500:])


def main_guard(fn):
    try:
        sys.exit(fn())
    except KeyboardInterrupt:
        sys.exit(130)
