#!/usr/bin/python3
"""Scripted BitTorrent peers for the abuse and leniency tests. Each mode dials a seeder
(or, for fake_metadata, listens) and does one thing:

  leech           downloads the whole torrent (v1 pieces checked with SHA-1) and prints
                  the SHA-256 of the bytes; --empty-pex sends an empty ut_pex message
                  right after the extension handshake, as a widely used client does
  hash_flood      (v2/hybrid) BEP 52 hash requests of 512 hashes, as fast as the socket
                  takes them, never reading a byte
  metadata_flood  ut_metadata requests for piece 0, never reading
  request_flood   interested, then block requests, never reading
  silent          --count TCP connections that send nothing
  half_handshake  --count TCP connections that send the first 30 bytes of a handshake
  idle_handshake  --count connections that complete the handshake and then sit idle
                  until --seconds pass (--reconnect: each connects again when closed)
  utp_syn         --count uTP SYN packets, each with a new connection id
  fake_metadata   listens on --listen-port; to every magnet fetch it claims a metadata
                  size of --claim bytes and answers requests with random bytes

Every mode prints one JSON line when done. Usage: scripted_peer.py MODE --torrent T
--port N [options]
"""
import argparse
import collections
import hashlib
import json
import os
import resource
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bencoding  # noqa: E402

PSTR = b"BitTorrent protocol"
EXT_HANDSHAKE = 0
OUR_UT_METADATA = 3
OUR_UT_PEX = 4


def msg(mid, payload=b""):
    return struct.pack(">IB", len(payload) + 1, mid) + payload


def ext_msg(ext_id, payload):
    return msg(20, bytes([ext_id]) + payload)


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def read_msg(s):
    (length,) = struct.unpack(">I", recv_exact(s, 4))
    return recv_exact(s, length) if length else b""


class Torrent:
    def __init__(self, path):
        meta = bencoding.decode(open(path, "rb").read())
        raw = open(path, "rb").read()
        # The info dictionary's bytes, as they are in the file (for the info-hashes).
        start = raw.index(b"4:info") + 6
        _, end = bencoding._dec(raw, start)
        self.info_bytes = raw[start:end]
        self.info = meta[b"info"]
        self.piece_length = self.info[b"piece length"]
        self.v1 = b"pieces" in self.info
        self.v2 = b"file tree" in self.info
        self.hash_v1 = hashlib.sha1(self.info_bytes).digest() if self.v1 else None
        self.hash_v2 = hashlib.sha256(self.info_bytes).digest()[:20] if self.v2 else None
        if b"length" in self.info:
            self.length = self.info[b"length"]
        elif b"files" in self.info:
            self.length = sum(f[b"length"] for f in self.info[b"files"])
        else:
            self.length = 0
        self.pieces = [self.info[b"pieces"][i:i + 20] for i in range(0, len(self.info.get(b"pieces", b"")), 20)]
        self.roots = []
        if self.v2:
            def walk(tree):
                for k, v in tree.items():
                    if k == b"" and b"pieces root" in v:
                        self.roots.append((v[b"pieces root"], v[b"length"]))
                    elif isinstance(v, dict):
                        walk(v)
            walk(self.info[b"file tree"])

    def wire_hash(self):
        return self.hash_v1 or self.hash_v2


def handshake(s, t, v2=False, ext=True):
    reserved = bytearray(8)
    if ext:
        reserved[5] |= 0x10
    reserved[7] |= 0x04
    ih = t.wire_hash()
    if v2:
        reserved[7] |= 0x10
        ih = t.hash_v2
    s.sendall(bytes([19]) + PSTR + bytes(reserved) + ih + b"-SC0001-" + os.urandom(12))
    theirs = recv_exact(s, 68)
    if theirs[1:20] != PSTR:
        raise ConnectionError("not a BitTorrent peer")
    return theirs


def connect(args, timeout=10):
    s = socket.create_connection((args.host, args.port), timeout=timeout)
    return s


def their_ext(s):
    """Reads messages until the peer's extension handshake; returns its dict."""
    while True:
        body = read_msg(s)
        if body[:1] == b"\x14" and body[1:2] == b"\x00":
            return bencoding.decode(body[2:])


def our_ext(s, metadata=True, pex=True):
    m = {}
    if metadata:
        m["ut_metadata"] = OUR_UT_METADATA
    if pex:
        m["ut_pex"] = OUR_UT_PEX
    s.sendall(ext_msg(EXT_HANDSHAKE, bencoding.encode({"m": m, "v": "scripted 1.0", "reqq": 500})))


def leech(args, t):
    deadline = time.time() + args.seconds
    last_err = ""
    while time.time() < deadline:
        try:
            return leech_once(args, t, deadline)
        except (ConnectionError, OSError, socket.timeout) as e:
            last_err = str(e)
            time.sleep(0.5)  # refused or dropped: try again, as a client would
    return {"event": "failed", "error": last_err}


def leech_once(args, t, deadline):
    s = connect(args)
    s.settimeout(20)
    handshake(s, t)
    our_ext(s)
    ext = their_ext(s)
    pex_id = ext.get(b"m", {}).get(b"ut_pex", 0)
    sent_empty_pex = False
    if args.empty_pex and pex_id:
        s.sendall(ext_msg(pex_id, b"de"))  # no added, no dropped
        sent_empty_pex = True
    s.sendall(msg(2))  # interested
    pending = collections.deque()
    for p in range(len(t.pieces)):
        plen = min(t.piece_length, t.length - p * t.piece_length)
        for b in range(0, plen, 16384):
            pending.append((p, b, min(16384, plen - b)))
    total = len(pending)
    data = bytearray(t.length)
    inflight = {}
    got = set()
    unchoked = False
    while len(got) < total:
        if time.time() > deadline:
            raise ConnectionError("deadline")
        if unchoked:
            reqs = b""
            while len(inflight) < 64 and pending:
                p, b, ln = pending.popleft()
                reqs += msg(6, struct.pack(">III", p, b, ln))
                inflight[(p, b)] = ln
            if reqs:
                s.sendall(reqs)
        body = read_msg(s)
        if not body:
            continue
        if body[0] == 1:
            unchoked = True
        elif body[0] == 0:
            unchoked = False  # with the fast extension, rejects follow for what it drops
        elif body[0] == 7:
            p, b = struct.unpack(">II", body[1:9])
            if inflight.pop((p, b), None) is not None:
                off = p * t.piece_length + b
                data[off:off + len(body) - 9] = body[9:]
                got.add((p, b))
        elif body[0] == 16:  # reject: ask again later
            p, b, ln = struct.unpack(">III", body[1:13])
            if inflight.pop((p, b), None) is not None:
                pending.append((p, b, ln))
    s.close()
    bad = 0
    for i, h in enumerate(t.pieces):
        if hashlib.sha1(bytes(data[i * t.piece_length:(i + 1) * t.piece_length])).digest() != h:
            bad += 1
    return {"event": "done", "bytes": t.length, "sha256": hashlib.sha256(bytes(data)).hexdigest(),
            "bad_pieces": bad, "sent_empty_pex": sent_empty_pex}


def flood(args, t, make):
    """Handshakes, then writes what make() returns for --seconds, never reading."""
    s = connect(args)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    handshake(s, t, v2=args.v2)
    our_ext(s)
    ext = their_ext(s) if args.mode == "metadata_flood" else {}
    chunk = make(ext)
    s.setblocking(False)
    sent = 0
    end = time.time() + args.seconds
    closed = False
    while time.time() < end:
        _, w, _ = select.select([], [s], [], 0.2)
        if not w:
            continue
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            continue
        except OSError:
            closed = True
            break
    s.close()
    return {"event": "done", "bytes_sent": sent, "closed_by_peer": closed}


def hash_flood(args, t):
    root, length = max(t.roots, key=lambda r: r[1])
    base = (t.piece_length // 16384).bit_length() - 1
    npieces = (length + t.piece_length - 1) // t.piece_length
    reqs = b""
    for i in range(64):
        index = (i * 512) % max(512, npieces - npieces % 512 or 512)
        reqs += msg(21, root + struct.pack(">IIII", base, index, 512, 10))
    return flood(args, t, lambda ext: reqs)


def metadata_flood(args, t):
    def make(ext):
        mid = ext.get(b"m", {}).get(b"ut_metadata", 1)
        return ext_msg(mid, bencoding.encode({"msg_type": 0, "piece": 0})) * 256
    return flood(args, t, make)


def request_flood(args, t):
    def make(ext):
        out = b""
        for i in range(512):
            p = i % max(1, len(t.pieces) or (t.length // t.piece_length))
            out += msg(6, struct.pack(">III", p, 0, 16384))
        return out
    args.v2 = False
    s_chunk = make({})
    # interested first, then the requests
    return flood(args, t, lambda ext: msg(2) + s_chunk)


def many(args, t, first_bytes):
    socks = []
    refused = 0
    for _ in range(args.count):
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.connect((args.host, args.port))
        except BlockingIOError:
            pass
        except OSError:
            refused += 1
            s.close()
            continue
        socks.append(s)
    # Let the connects complete, then send the first bytes (if any).
    time.sleep(0.5)
    sent = 0
    for s in socks:
        if first_bytes:
            try:
                s.send(first_bytes)
                sent += 1
            except OSError:
                pass
    end = time.time() + args.seconds
    while time.time() < end:
        time.sleep(0.2)
    open_left = 0
    for s in socks:
        try:
            s.setblocking(False)
            r = s.recv(1)
            if r != b"":
                open_left += 1
        except BlockingIOError:
            open_left += 1
        except OSError:
            pass
        s.close()
    return {"event": "done", "connections": len(socks), "refused": refused, "still_open": open_left}


def idle_handshake(args, t):
    stop = time.time() + args.seconds
    stats = {"handshakes": 0, "closed": 0}
    lock = threading.Lock()

    def one():
        while time.time() < stop:
            try:
                s = connect(args, timeout=5)
                s.settimeout(1)
                handshake(s, t)
                with lock:
                    stats["handshakes"] += 1
                while time.time() < stop:
                    try:
                        if s.recv(65536) == b"":
                            break
                    except socket.timeout:
                        continue
                with lock:
                    stats["closed"] += 1
                s.close()
                if not args.reconnect:
                    return
                time.sleep(0.5)  # then again, as a client retrying would
            except (OSError, ConnectionError):
                time.sleep(0.2)
    threads = [threading.Thread(target=one, daemon=True) for _ in range(args.count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(args.seconds + 10)
    return {"event": "done", **stats}


def utp_syn(args, t):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    end = time.time() + args.seconds
    i = 0
    while sent < args.count and time.time() < end:
        conn_id = (i * 7919) & 0xFFFF
        ts = int(time.time() * 1e6) & 0xFFFFFFFF
        pkt = struct.pack(">BBHIIIHH", (4 << 4) | 1, 0, conn_id, ts, 0, 1 << 20, i & 0xFFFF, 0)
        try:
            s.sendto(pkt, (args.host, args.port))
            sent += 1
        except OSError:
            time.sleep(0.001)
        i += 1
        if i % 2000 == 0:
            time.sleep(0.01)
    return {"event": "done", "syns": sent}


def fake_metadata(args, t):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.listen_port))
    srv.listen(64)
    srv.settimeout(0.5)
    served = {"connections": 0, "pieces_sent": 0}
    lock = threading.Lock()

    def serve(c):
        try:
            c.settimeout(30)
            hs = recv_exact(c, 68)
            reserved = bytearray(8)
            reserved[5] |= 0x10
            c.sendall(bytes([19]) + PSTR + bytes(reserved) + hs[28:48] + b"-SC0001-" + os.urandom(12))
            c.sendall(ext_msg(0, bencoding.encode({"m": {"ut_metadata": OUR_UT_METADATA},
                                                   "metadata_size": args.claim})))
            their_id = 0
            junk = os.urandom(16384)
            while True:
                body = read_msg(c)
                if body[:1] != b"\x14":
                    continue
                if body[1] == 0:
                    their_id = bencoding.decode(body[2:]).get(b"m", {}).get(b"ut_metadata", 0)
                    continue
                if body[1] != OUR_UT_METADATA or not their_id:
                    continue
                req = bencoding.decode(body[2:])
                piece = req.get(b"piece", 0)
                c.sendall(ext_msg(their_id, bencoding.encode({"msg_type": 1, "piece": piece,
                                                             "total_size": args.claim}) + junk))
                with lock:
                    served["pieces_sent"] += 1
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            c.close()

    end = time.time() + args.seconds
    while time.time() < end:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        with lock:
            served["connections"] += 1
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    return {"event": "done", **served}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["leech", "hash_flood", "metadata_flood", "request_flood", "silent",
                                     "half_handshake", "idle_handshake", "utp_syn", "fake_metadata"])
    ap.add_argument("--torrent")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--claim", type=int, default=64 << 20)
    ap.add_argument("--v2", action="store_true", help="handshake for the v2 swarm")
    ap.add_argument("--empty-pex", action="store_true")
    ap.add_argument("--reconnect", action="store_true", help="idle_handshake: connect again when closed")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    t = Torrent(args.torrent) if args.torrent else None
    fn = {
        "leech": leech, "hash_flood": hash_flood, "metadata_flood": metadata_flood, "request_flood": request_flood,
        "silent": lambda a, t: many(a, t, b""),
        "half_handshake": lambda a, t: many(a, t, (bytes([19]) + PSTR + bytes(8))[:30]),
        "idle_handshake": idle_handshake, "utp_syn": utp_syn, "fake_metadata": fake_metadata,
    }[args.mode]
    try:
        out = fn(args, t)
    except (OSError, ConnectionError) as e:
        out = {"event": "failed", "error": str(e)}
    print(json.dumps({"mode": args.mode, **out}), flush=True)


if __name__ == "__main__":
    main()
