#!/usr/bin/python3
"""A shoal DHT node under hostile KRPC traffic, from raw UDP sockets: malformed packets,
wrong arguments, unknown methods, bad tokens, oversized and badly signed BEP 44 items,
stale sequence numbers and CAS mismatches get the right KRPC error (or are ignored); a
flood from one address is cut off and banned while other sources are still served;
storage stays within the limits given; a stranger never gets a reply much larger than
its query, and a node that has answered us gets the full one. The node must survive all
of it.

Usage: dht_robust_test.py --shoal PATH
"""
import argparse
import hashlib
import json
import os
import socket
import time

import bencoding as b
import harness as h


class Client:
    """A raw KRPC client on its own UDP socket (its own source port)."""

    def __init__(self, port):
        self.node = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.id = os.urandom(20)
        self.tid = 0
        self.queries = []  # queries the node sent us, not answered yet

    def send_raw(self, data):
        self.s.sendto(data, self.node)

    def recv(self, timeout=1.0):
        """The next reply to us, skipping queries the node sends us (pings); None on timeout."""
        self.s.settimeout(timeout)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                data, _ = self.s.recvfrom(65536)
            except socket.timeout:
                return None
            msg = b.decode(data)
            if msg.get(b"y") == b"q":
                self.queries.append(msg)
                continue
            msg[b"_size"] = len(data)
            return msg
        return None

    def query(self, q, args, timeout=1.0, raw_size=None):
        self.tid += 1
        t = self.tid.to_bytes(2, "big")
        a = {"id": self.id}
        a.update(args)
        pkt = b.encode({"t": t, "y": "q", "q": q, "a": a})
        self.send_raw(pkt)
        r = self.recv(timeout)
        if r is not None:
            r[b"_query_size"] = len(pkt)
        return r

    def answer_pings(self, timeout=1.0):
        """Answers the node's pending queries (proving our address); returns how many."""
        n = 0
        for msg in self.queries:
            self.s.sendto(b.encode({"t": msg[b"t"], "y": "r", "r": {"id": self.id}}), self.node)
            n += 1
        self.queries = []
        self.s.settimeout(0.1)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                data, src = self.s.recvfrom(65536)
            except socket.timeout:
                continue
            msg = b.decode(data)
            if msg.get(b"y") == b"q":
                self.s.sendto(b.encode({"t": msg[b"t"], "y": "r", "r": {"id": self.id}}), src)
                n += 1
        return n


def err_code(r):
    return r[b"e"][0] if r and r.get(b"y") == b"e" else None


def last_stats(run, log):
    for line in reversed(open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()):
        if line.startswith("{") and '"event":"stats"' in line:
            return json.loads(line)
    return {}


def start_node(run, log, *extra):
    port = h.free_port()
    p = run.spawn([run.shoal, "dht", "node", "--port", str(port), "--local", "--json", *extra], log)
    deadline = time.time() + 10
    while time.time() < deadline and b"listening" not in open(run.path(log), "rb").read():
        time.sleep(0.05)
    return p, port


def sign(key, salt, seq, v):
    """BEP 44: the signature covers salt, seq and the bencoded value."""
    buf = (b"4:salt%d:%s" % (len(salt), salt) if salt else b"") + b"3:seqi%de1:v" % seq + b.encode(v)
    return key.sign(buf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "dht-robust")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    try:
        node, port = start_node(run, "node.log", "--max-torrents", "5", "--max-peers", "3", "--max-items", "5",
                                "--rate", "1000")
        c = Client(port)
        r = c.query("ping", {})
        run.check("ping answered", r is not None and r.get(b"y") == b"r" and len(r[b"r"][b"id"]) == 20, str(r))
        run.check("BEP 42: the reply tells us our address (ip)", r and len(r.get(b"ip", b"")) == 6, str(r))

        # --- malformed input --------------------------------------------------------------
        for label, data in [("not bencode", b"\xff\x00garbage"), ("a bencoded list", b"l4:spame"),
                            ("truncated", b"d1:ad2:id20:"), ("a 60 000-deep nesting", b"l" * 60000),
                            ("huge string length", b"d1:t99999999999:x"), ("empty", b"")]:
            c.send_raw(data)
            run.check(f"malformed ({label}): ignored", c.recv(0.3) is None)
        c.send_raw(b.encode({"t": "aa", "y": "q", "q": "ping", "a": {"id": b"short"}}))
        run.check("query with a 5-byte id: error 203", err_code(c.recv()) == 203)
        run.check("unknown method: error 204", err_code(c.query("vote", {"target": os.urandom(20)})) == 204)
        run.check("find_node without target: error 203", err_code(c.query("find_node", {})) == 203)
        run.check("get_peers with a 19-byte info_hash: error 203",
                  err_code(c.query("get_peers", {"info_hash": os.urandom(19)})) == 203)
        ih = os.urandom(20)
        run.check("announce_peer with a forged token: error 203",
                  err_code(c.query("announce_peer", {"info_hash": ih, "port": 6881, "token": b"12345678"})) == 203)

        # --- tokens and storage bounds ----------------------------------------------------
        def token_for(key, target):
            r = c.query("get_peers" if key == "info_hash" else "get", {key: target})
            return r[b"r"][b"token"]

        tok = token_for("info_hash", ih)
        r = c.query("announce_peer", {"info_hash": ih, "port": 6881, "token": tok})
        run.check("announce_peer with the node's token: stored", r and r.get(b"y") == b"r", str(r))
        for i in range(10):
            c.query("announce_peer", {"info_hash": ih, "port": 7000 + i, "token": tok})
        c.answer_pings(0.5)  # prove our address so replies are not trimmed
        r = c.query("get_peers", {"info_hash": ih})
        vals = r[b"r"].get(b"values", []) if r else []
        run.check(f"peers per torrent bounded (--max-peers 3): {len(vals)} values", 0 < len(vals) <= 3, str(vals))
        for i in range(12):
            t = os.urandom(20)
            c.query("announce_peer", {"info_hash": t, "port": 6881, "token": token_for("info_hash", t)})
        for i in range(12):
            v = f"item {i}"
            t = hashlib.sha1(b.encode(v)).digest()
            c.query("put", {"v": v, "token": token_for("target", t)}, timeout=1)
        time.sleep(1.2)
        st = last_stats(run, "node.log")
        run.check(f"torrents bounded (--max-torrents 5): {st.get('torrents')}", 0 < st.get("torrents", 99) <= 5,
                  str(st))
        run.check(f"items bounded (--max-items 5): {st.get('items')}", 0 < st.get("items", 99) <= 5, str(st))

        # --- BEP 44 errors ----------------------------------------------------------------
        big = "x" * 1100
        r = c.query("put", {"v": big, "token": token_for("target", hashlib.sha1(b.encode(big)).digest())})
        run.check("put of a 1100-byte value: error 205", err_code(r) == 205, str(r))
        key = Ed25519PrivateKey.generate()
        k = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        salt = b"s"
        target = hashlib.sha1(k + salt).digest()
        v1 = "version five"
        r = c.query("put", {"v": v1, "k": k, "salt": salt, "seq": 5, "sig": bytes(64),
                            "token": token_for("target", target)})
        run.check("mutable put with a wrong signature: error 206", err_code(r) == 206, str(r))
        r = c.query("put", {"v": v1, "k": k, "salt": b"s" * 100, "seq": 5, "sig": sign(key, b"s" * 100, 5, v1),
                            "token": token_for("target", hashlib.sha1(k + b"s" * 100).digest())})
        run.check("mutable put with a 100-byte salt: error 207", err_code(r) == 207, str(r))
        r = c.query("put", {"v": v1, "k": k, "salt": salt, "seq": 5, "sig": sign(key, salt, 5, v1),
                            "token": token_for("target", target)})
        run.check("mutable put, seq 5, well signed: stored", r and r.get(b"y") == b"r", str(r))
        v0 = "version four"
        r = c.query("put", {"v": v0, "k": k, "salt": salt, "seq": 4, "sig": sign(key, salt, 4, v0),
                            "token": token_for("target", target)})
        run.check("mutable put with an older seq (4 < 5): error 302", err_code(r) == 302, str(r))
        v2 = "version six"
        r = c.query("put", {"v": v2, "k": k, "salt": salt, "seq": 6, "cas": 3, "sig": sign(key, salt, 6, v2),
                            "token": token_for("target", target)})
        run.check("mutable put with a wrong cas: error 301", err_code(r) == 301, str(r))
        r = c.query("get", {"target": target})
        run.check("get returns the stored seq 5 value with its signature",
                  r and r[b"r"].get(b"seq") == 5 and r[b"r"].get(b"v") == b"version five" and
                  r[b"r"].get(b"sig") == sign(key, salt, 5, v1), str(r))
        r = c.query("get", {"target": target, "seq": 5})
        run.check("get with seq 5 (we have it): no value sent", r and b"v" not in r[b"r"] and r[b"r"].get(b"seq") == 5,
                  str(r))
        run.check("the node survived all of it", node.poll() is None and c.query("ping", {}) is not None)

        # --- reflection --------------------------------------------------------------------
        for i in range(100):
            c.query("announce_peer", {"info_hash": ih, "port": 8000 + i, "token": tok}, timeout=0.2)
        node2, port2 = start_node(run, "node2.log", "--rate", "1000")
        c2 = Client(port2)
        ih2 = os.urandom(20)
        tok2 = c2.query("get_peers", {"info_hash": ih2})[b"r"][b"token"]
        for i in range(100):
            c2.query("announce_peer", {"info_hash": ih2, "port": 9000 + i, "token": tok2}, timeout=0.3)
        stranger = Client(port2)
        r = stranger.query("get_peers", {"info_hash": ih2})
        ratio = r[b"_size"] / r[b"_query_size"] if r else 0
        run.check(f"a stranger's get_peers reply is at most 4x its query ({ratio:.1f}x)", r is not None and ratio <= 4,
                  str(r and r[b"_size"]))
        stranger.answer_pings(1.0)
        r = stranger.query("get_peers", {"info_hash": ih2})
        full = len(r[b"r"].get(b"values", [])) if r else 0
        run.check(f"once it has answered us, the reply carries up to 100 values ({full})", full >= 90, str(full))

        # --- flood ---------------------------------------------------------------------------
        node3, port3 = start_node(run, "node3.log", "--rate", "20", "--ban-time", "30")
        flood = Client(port3)
        ping = b.encode({"t": "fl", "y": "q", "q": "ping", "a": {"id": flood.id}})
        for _ in range(600):
            flood.send_raw(ping)
        replies = 0
        flood.s.settimeout(0.5)
        while True:
            try:
                data, _ = flood.s.recvfrom(65536)
                if b.decode(data).get(b"y") == b"r":
                    replies += 1
            except socket.timeout:
                break
        run.check(f"a flood of 600 pings from one source: {replies} answered (burst 60)", 0 < replies <= 80)
        time.sleep(1.2)
        run.check("the flooding source is banned (no answer a second later)", flood.query("ping", {}) is None)
        other = Client(port3)
        run.check("another source is still answered", other.query("ping", {}) is not None)
        st = last_stats(run, "node3.log")
        run.check("the node counts the ban", st.get("banned_sources", 0) >= 1, str(st))
        run.check("all nodes still running", all(p.poll() is None for p in (node, node2, node3)))
    finally:
        rc = run.finish()
    return rc


if __name__ == "__main__":
    h.main_guard(main)
