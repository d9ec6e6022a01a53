#!/usr/bin/python3
"""`shoal tracker` with real clients, everything on loopback.

Shoal seeders announce one torrent over HTTP and another over UDP; libtorrent and aria2
download both, finding the seeder only through the shoal tracker; every byte is compared.
Then, with hand-made requests: /stats counts per protocol, scrapes over HTTP and UDP,
whitelist refusals, stopped peers removed (by hand and by a shoal seeder that quits),
dictionary peers, a peer never handed itself, IPv6 peers (peers6, UDP over ::1), peers
expiring after 2 x interval, and malformed HTTP and UDP requests answered with an error
or ignored while the server keeps serving.

Usage: tracker_test.py --shoal PATH [--size MiB]
"""
import argparse
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import libtorrent as lt  # only for bdecode: this runs under /usr/bin/python3

import harness as h

PROTOCOL_ID = 0x41727101980


def start_tracker(run, log, *extra, bind="127.0.0.1", port=None):
    """Starts `shoal tracker --json` (on a free port unless given); returns (process, port,
    its JSON line)."""
    port = port or h.free_port()
    p = run.spawn([run.shoal, "tracker", "--port", str(port), "--bind", bind, "--json", *extra], log)
    deadline = time.time() + 15
    while time.time() < deadline:
        for line in open(p.log, "rb").read().decode("utf-8", "replace").splitlines():
            if line.startswith("{") and '"listening"' in line:
                return p, port, json.loads(line)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("shoal tracker did not start; see " + p.log)


def url_host(host):
    return f"[{host}]" if ":" in host else host


def http_get(port, target, host="127.0.0.1"):
    try:
        with urllib.request.urlopen(f"http://{url_host(host)}:{port}{target}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def stats(port):
    return json.loads(http_get(port, "/stats")[1])


def q(raw):
    return urllib.parse.quote_from_bytes(raw, safe="")


def peer_id(n):
    return b"-TT0001-" + f"{n:012d}".encode()


def announce(port, ih, pport, left=0, event=None, pid=1, host="127.0.0.1", extra=""):
    target = (f"/announce?info_hash={q(ih)}&peer_id={q(peer_id(pid))}&port={pport}&uploaded=0&downloaded=0"
              f"&left={left}" + (f"&event={event}" if event else "") + extra)
    status, body = http_get(port, target, host)
    return status, lt.bdecode(body) or {}


def compact(peers, step=6):
    out = set()
    for i in range(0, len(peers) - step + 1, step):
        addr = socket.inet_ntop(socket.AF_INET if step == 6 else socket.AF_INET6, peers[i:i + step - 2])
        out.add((addr, struct.unpack(">H", peers[i + step - 2:i + step])[0]))
    return out


def scrape_http(port, *hashes):
    status, body = http_get(port, "/scrape?" + "&".join("info_hash=" + q(x) for x in hashes))
    files = (lt.bdecode(body) or {}).get(b"files", {})
    return {k: (v[b"complete"], v[b"incomplete"], v[b"downloaded"]) for k, v in files.items()}


class Udp:
    """A BEP 15 client with no retries: loopback does not lose datagrams."""

    def __init__(self, port, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_DGRAM)
        self.s.bind((host, 0))
        self.addr = (host, port)
        self.cid = None

    def ask(self, pkt, timeout=3.0):
        self.s.settimeout(timeout)
        self.s.sendto(pkt, self.addr)
        try:
            return self.s.recvfrom(65536)[0]
        except socket.timeout:
            return None

    def connect(self):
        tid = random.getrandbits(32)
        r = self.ask(struct.pack(">QII", PROTOCOL_ID, 0, tid))
        action, t, cid = struct.unpack(">IIQ", r[:16])
        assert action == 0 and t == tid, r
        self.cid = cid
        return cid

    def announce(self, ih, pport, left=0, event=0, pid=1, numwant=-1, cid=None):
        """Returns ("ok", interval, leechers, seeders, peers bytes) or ("error", message)."""
        tid = random.getrandbits(32)
        pkt = struct.pack(">QII", self.cid if cid is None else cid, 1, tid) + ih + peer_id(pid) + \
            struct.pack(">QQQIIIiH", 0, left, 0, event, 0, 0, numwant, pport)
        r = self.ask(pkt)
        return self.reply(r, tid, 1)

    def scrape(self, *hashes):
        tid = random.getrandbits(32)
        r = self.ask(struct.pack(">QII", self.cid, 2, tid) + b"".join(hashes))
        res = self.reply(r, tid, 2)
        if res[0] != "ok":
            return res
        body = res[1]
        return [struct.unpack(">III", body[i:i + 12]) for i in range(0, len(body), 12)]

    @staticmethod
    def reply(r, tid, action):
        if r is None:
            return ("none",)
        a, t = struct.unpack(">II", r[:8])
        if t != tid:
            return ("wrong transaction",)
        if a == 3:
            return ("error", r[8:].decode("utf-8", "replace"))
        if a == 1 and action == 1:
            interval, leechers, seeders = struct.unpack(">III", r[8:20])
            return ("ok", interval, leechers, seeders, r[20:])
        if a == 2 and action == 2:
            return ("ok", r[8:])
        return ("unexpected", r)


def wait_for(pred, timeout):
    return h.wait_for(pred, timeout, step=0.2)


def aria2_download(run, torrent, dst, log, udp):
    """aria2 on loopback only. Its UDP tracker client rides on its DHT socket, so the UDP
    case turns DHT on, with no entry point and an empty routing table in the scratch folder:
    it can only talk to peers the tracker hands out."""
    argv = ["aria2c", "--dir", dst, "--enable-dht=" + ("true" if udp else "false"), "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0",
            "--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10", "--bt-stop-timeout=120",
            "--listen-port", str(h.free_port()), "--file-allocation=none", "--summary-interval=0",
            "--console-log-level=warn", "--check-certificate=false", "--disable-ipv6=true",
            "--log", run.path(log + ".debug"), "--log-level=info"]
    if udp:
        argv += ["--dht-listen-port", str(h.free_port()), "--dht-file-path", run.path(log + ".dht")]
    with open(run.path(log), "wb") as f:
        try:
            return subprocess.run(argv + [torrent], stdout=f, stderr=subprocess.STDOUT, timeout=180).returncode
        except subprocess.TimeoutExpired:
            return "timeout"


def make_torrents(run, tport, size):
    """The same data as two torrents (a source tag each), one announcing over HTTP and one
    over UDP, and a third one the whitelist leaves out."""
    src = run.path("src")
    h.write_random(os.path.join(src, "data.bin"), size, seed=11)
    torrents = {}
    for proto in ("http", "udp"):
        t = run.path(f"{proto}.torrent")
        info = h.shoal_create(run, os.path.join(src, "data.bin"), t, "--v1", "-s", proto, "-t",
                              f"{proto}://127.0.0.1:{tport}/announce")
        torrents[proto] = (t, bytes.fromhex(info["info_hash_v1"]))
    other = h.shoal_create(run, os.path.join(src, "data.bin"), run.path("other.torrent"), "--v1", "-s", "other", "-t",
                           f"http://127.0.0.1:{tport}/announce")
    return src, torrents, bytes.fromhex(other["info_hash_v1"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=8, help="MiB of test data")
    args = ap.parse_args()
    run = h.Run(args.shoal, "tracker")
    try:
        body(run, args)
    finally:
        code = run.finish()
    return code


def body(run, args):
    # The torrents carry the tracker's port and the tracker's whitelist carries their
    # info-hashes: choose the port, make the torrents, then start the tracker on it.
    port = h.free_port()
    src, torrents, other_hash = make_torrents(run, port, args.size << 20)
    wl = run.path("whitelist.txt")
    with open(wl, "w") as f:
        f.write("# torrents this test tracks\n\n")
        for _, ih in torrents.values():
            f.write(ih.hex().upper() + "\n")
    tp, _, listening = start_tracker(run, "tracker.log", "--whitelist", wl, port=port)
    if not run.check("tracker prints its JSON line", listening["port"] == port and listening["udp_port"] == port and
                     listening["whitelist"] == 2, json.dumps(listening)):
        return
    http_ih, udp_ih = torrents["http"][1], torrents["udp"][1]

    # --- shoal seeders announce over HTTP and UDP ------------------------------------
    seed_ports = {}
    seeders = {}
    for proto in ("http", "udp"):
        seed_ports[proto] = h.free_port()
        seeders[proto] = h.shoal_seed(run, torrents[proto][0], src, seed_ports[proto], f"seed-{proto}.log")
    ok = wait_for(lambda: stats(port)["seeders"] == 2, 30)
    s = stats(port)
    run.check("shoal seeders announced over HTTP and UDP",
              ok and s["announces"]["http"] >= 1 and s["announces"]["udp"] >= 1 and s["connects"]["udp"] >= 1 and
              s["torrents"] == 2, json.dumps(s))
    sc = scrape_http(port, http_ih, udp_ih)
    run.check("HTTP scrape: one seeder in each swarm", sc.get(http_ih, (0,))[0] == 1 and sc.get(udp_ih, (0,))[0] == 1,
              repr(sc))
    u = Udp(port)
    u.connect()
    usc = u.scrape(http_ih, udp_ih, other_hash)
    run.check("UDP scrape: seeders, completed, leechers per hash, zeros for an unlisted one",
              usc == [(1, 0, 0), (1, 0, 0), (0, 0, 0)], repr(usc))

    # --- libtorrent and aria2 download, finding the seeders only through the tracker ----
    for proto in ("http", "udp"):
        t = torrents[proto][0]
        dst = run.path(f"lt-{proto}")
        os.makedirs(dst)
        lp = h.lt_peer(run, "download", t, dst, h.free_port(), f"lt-{proto}.log")
        rc, _ = h.lt_result(lp)
        run.check(f"libtorrent downloads through the {proto.upper()} tracker", rc == 0, f"exit {rc}")
        run.check(f"libtorrent ({proto}): bytes identical", h.same_tree(src, dst, ["data.bin"]))
        dst = run.path(f"aria2-{proto}")
        os.makedirs(dst)
        rc = aria2_download(run, t, dst, f"aria2-{proto}.log", proto == "udp")
        run.check(f"aria2 downloads through the {proto.upper()} tracker", rc == 0, f"exit {rc}")
        run.check(f"aria2 ({proto}): bytes identical", h.same_tree(src, dst, ["data.bin"]))
    s = stats(port)
    # Each protocol: the seeder's started, and at least one announce from libtorrent and aria2.
    run.check("/stats counts the announces of every client per protocol",
              s["announces"]["http"] >= 3 and s["announces"]["udp"] >= 3 and s["connects"]["udp"] >= 3 and
              s["scrapes"]["http"] >= 1 and s["scrapes"]["udp"] >= 1 and s["uptime_seconds"] >= 1, json.dumps(s))
    dbg = open(run.path("aria2-udp.log.debug"), "rb").read().decode("utf-8", "replace")
    run.check("aria2 used the UDP tracker (BEP 15 connect and announce)",
              "UDPT received CONNECT reply" in dbg and "UDPT received ANNOUNCE reply" in dbg)

    # --- whitelist ------------------------------------------------------------------
    st, rep = announce(port, other_hash, 7000, left=10)
    reason = rep.get(b"failure reason", b"").decode()
    run.check("whitelist: an unlisted torrent gets a failure reason over HTTP", st == 200 and "whitelist" in reason,
              repr(rep))
    r = u.announce(other_hash, 7000, left=10)
    run.check("whitelist: an unlisted torrent gets a UDP error", r[0] == "error" and "whitelist" in r[1], repr(r))
    run.check("whitelist: unlisted torrents are not tracked or scraped",
              stats(port)["torrents"] == 2 and other_hash not in scrape_http(port, other_hash) and
              stats(port)["not_whitelisted"] >= 2, json.dumps(stats(port)))

    # --- peers: dictionary form, never oneself, stopped ------------------------------
    st, rep = announce(port, http_ih, 7001, left=100, event="started", pid=1, extra="&compact=0&no_peer_id=1")
    peers = rep.get(b"peers", [])
    as_dicts = isinstance(peers, list) and all(isinstance(p, dict) and b"ip" in p and b"port" in p for p in peers)
    run.check("compact=0: peers as dictionaries holding the seeder",
              as_dicts and ("127.0.0.1", seed_ports["http"]) in {(p[b"ip"].decode(), p[b"port"]) for p in peers},
              repr(rep))
    st, rep = announce(port, http_ih, seed_ports["http"], left=0, pid=2)
    got = compact(rep.get(b"peers", b""))
    run.check("a peer is never handed itself", ("127.0.0.1", seed_ports["http"]) not in got and
              ("127.0.0.1", 7001) in got, repr(got))
    st, rep = announce(port, http_ih, 7002, left=100, pid=3)
    run.check("a leecher sees the other leecher", ("127.0.0.1", 7001) in compact(rep.get(b"peers", b"")))
    announce(port, http_ih, 7001, left=100, event="stopped", pid=1)
    st, rep = announce(port, http_ih, 7002, left=100, pid=3)
    run.check("HTTP event=stopped removes the peer", ("127.0.0.1", 7001) not in compact(rep.get(b"peers", b"")) and
              rep.get(b"incomplete") == 1, repr(rep))
    r = u.announce(udp_ih, 7003, left=5, event=2, pid=4)
    r2 = u.announce(udp_ih, 7004, left=5, event=2, pid=5)
    seen = r2[0] == "ok" and ("127.0.0.1", 7003) in compact(r2[4])
    u.announce(udp_ih, 7003, left=5, event=3, pid=4)
    r3 = u.announce(udp_ih, 7004, left=5, pid=5)
    run.check("UDP event=stopped removes the peer", r[0] == "ok" and seen and r3[0] == "ok" and
              ("127.0.0.1", 7003) not in compact(r3[4]) and r3[2] == 1, repr((r, r2, r3)))
    # A shoal seeder that quits says `stopped` (over UDP here) and leaves the swarm.
    seeder_ep = ("127.0.0.1", seed_ports["udp"])

    def udp_swarm():
        r = u.announce(udp_ih, 7004, left=5, pid=5, numwant=200)
        return compact(r[4]) if r[0] == "ok" else set()

    listed = seeder_ep in udp_swarm()
    run.stop(seeders["udp"])
    gone = wait_for(lambda: seeder_ep not in udp_swarm(), 10)
    run.check("a shoal seeder that stops (SIGTERM) says so and leaves the swarm", listed and gone,
              repr(udp_swarm()))

    # --- malformed HTTP ----------------------------------------------------------------
    def raw_http(data, read=True):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(data)
            if not read:
                return b""
            out = b""
            try:
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except (socket.timeout, ConnectionResetError):
                pass  # a reset after the reply (unread input on the server side) is fine
            return out

    r = raw_http(b"THIS IS NOT HTTP\r\n\r\n")
    run.check("garbage over HTTP gets a 400", r.startswith(b"HTTP/1.1 400"), repr(r[:80]))
    r = raw_http(b"GET /announce?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    run.check("a request line over the header limit gets a 400", r.startswith(b"HTTP/1.1 400"), repr(r[:80]))
    st, body = http_get(port, "/announce?" + "x=1&" * 600)
    run.check("a query over 2048 bytes gets a 414 with a failure reason",
              st == 414 and b"failure reason" in body, f"{st} {body[:80]!r}")
    r = raw_http(b"POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    run.check("a request with a body is refused", r.startswith(b"HTTP/1.1 400") or r.startswith(b"HTTP/1.1 405"),
              repr(r[:80]))
    for target, expect in [("/announce", "info_hash is missing"), ("/announce?info_hash=%zz", "not valid"),
                           (f"/announce?info_hash={q(http_ih)}&peer_id={q(peer_id(1))}&port=0&left=0", "port"),
                           (f"/announce?info_hash={q(http_ih[:19])}&peer_id=x&port=1&left=0", "20 bytes"),
                           ("/scrape", "full scrapes")]:
        st, body = http_get(port, target)
        reason = (lt.bdecode(body) or {}).get(b"failure reason", b"").decode()
        run.check(f"malformed {target[:40]!r}: failure reason", st == 200 and expect in reason, f"{st} {body!r}")
    st, _ = http_get(port, "/nowhere")
    run.check("an unknown path is a 404", st == 404)
    # A client that stalls mid-request does not hold up others; keep-alive serves several requests.
    staller = socket.create_connection(("127.0.0.1", port))
    staller.sendall(b"GET /stats HTTP/1.1\r\nHo")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    answers = []
    for _ in range(3):
        conn.request("GET", "/stats")
        resp = conn.getresponse()
        answers.append((resp.status, json.loads(resp.read())["torrents"]))
    sock_reused = conn.sock is not None
    conn.close()
    staller.close()
    run.check("keep-alive: three requests on one connection while another client stalls",
              answers == [(200, 2)] * 3 and sock_reused, repr(answers))

    # --- malformed UDP -----------------------------------------------------------------
    bad = Udp(port)
    run.check("UDP: a datagram shorter than 16 bytes is ignored", bad.ask(b"\x00" * 5, timeout=1) is None)
    run.check("UDP: a connect without the protocol id is ignored",
              bad.ask(struct.pack(">QII", 12345, 0, 1), timeout=1) is None)
    r = bad.announce(udp_ih, 7005, cid=0x1122334455667788)
    run.check("UDP: a forged connection id gets an error", r[0] == "error" and "connection id" in r[1], repr(r))
    bad.connect()
    tid = 77
    r = bad.ask(struct.pack(">QII", bad.cid, 9, tid) + b"x" * 20)
    run.check("UDP: an unknown action gets an error", r is not None and r[:8] == struct.pack(">II", 3, tid), repr(r))
    r = bad.ask(struct.pack(">QII", bad.cid, 1, tid) + b"x" * 30)
    run.check("UDP: a short announce gets an error", r is not None and b"shorter than 98" in r, repr(r))
    r = bad.ask(os.urandom(300), timeout=1)
    run.check("UDP: random bytes get no more bytes back than they were", r is None or len(r) <= 300, repr(r))
    s = stats(port)
    run.check("after all that, the server still answers (HTTP and UDP)",
              Udp(port).connect() is not None and s["failures"]["http"] >= 6 and s["failures"]["udp"] >= 3 and
              s["ignored_udp"] >= 2 and tp.poll() is None, json.dumps(s))

    # --- IPv6: peers6 and UDP over ::1 ---------------------------------------------------
    # Every machine this runs on has ::1 (Debian's loopback); a missing one is a failure, not
    # a reason to pass without these checks.
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as t6:
            t6.bind(("::1", 0))
        have_v6 = True
    except OSError as e:
        have_v6 = False
        run.check("IPv6 loopback (::1) is there for the IPv6 checks", False, str(e))
    if have_v6:
        _, p6, _ = start_tracker(run, "tracker6.log", bind="::1")
        ih6 = b"\x66" * 20
        announce(p6, ih6, 8001, left=1, pid=1, host="::1")
        st, rep = announce(p6, ih6, 8002, left=1, pid=2, host="::1")
        got6 = compact(rep.get(b"peers6", b""), 18)
        run.check("IPv6: HTTP peers come as peers6 (18 bytes each)", got6 == {("::1", 8001)}, repr(rep))
        u6 = Udp(p6, "::1")
        u6.connect()
        r = u6.announce(ih6, 8003, left=1, pid=3)
        run.check("IPv6: UDP replies carry 18-byte peers", r[0] == "ok" and len(r[4]) == 36 and
                  compact(r[4], 18) == {("::1", 8001), ("::1", 8002)}, repr(r))
        run.check("IPv6: /stats counts them", stats_host(p6, "::1")["peers_ipv6"] == 3)

    # --- expiry: a peer silent for 2 x interval is dropped; idle connections are closed ---
    _, pe, info = start_tracker(run, "tracker-expiry.log", "--interval", "1", "--idle-timeout", "2")
    idle = socket.create_connection(("127.0.0.1", pe), timeout=8)
    idle.sendall(b"GET /stats HTTP/1.1\r\nHost")  # and never the rest
    t0 = time.time()
    try:
        closed = idle.recv(100) == b""
    except (socket.timeout, ConnectionResetError):
        closed = False
    waited = time.time() - t0
    idle.close()
    run.check("a connection stuck mid-request is closed after --idle-timeout", closed and 1.5 < waited < 5,
              f"closed {closed} after {waited:.1f} s")
    announce(pe, b"\x77" * 20, 9001, left=1, pid=1)
    announce(pe, b"\x77" * 20, 9002, left=0, pid=2)
    first = stats(pe)["peers"]
    dropped = wait_for(lambda: stats(pe)["peers"] == 0 and stats(pe)["torrents"] == 0, 8)
    run.check("peers that stop announcing expire after 2 x interval",
              info["peer_timeout"] == 2 and first == 2 and dropped, json.dumps(stats(pe)))

    run.stop(seeders["http"])
    run.stop(tp, wait=10)
    run.check("the tracker stops cleanly on SIGTERM", tp.returncode == 0, f"exit {tp.returncode}")


def stats_host(port, host):
    return json.loads(http_get(port, "/stats", host)[1])


if __name__ == "__main__":
    h.main_guard(main)
