#!/usr/bin/python3
"""A scripted misbehaving BitTorrent peer for tests. It listens on a port and, for every
connection, completes the handshake and then misbehaves in one chosen way:

  corrupt         claims every piece and answers each request with random bytes
  oversized       sends a message whose length prefix is 16 MiB
  out_of_range    sends a HAVE for a piece index past the end
  bad_bitfield    sends a bitfield of the wrong length
  choked_requests sends 2000 requests without ever being unchoked
  unrequested     sends piece data nobody asked for
  corrupt_block0  answers requests for the first block of a piece with random bytes and
                  rejects (BEP 6) requests for the other blocks, so every piece it touches
                  mixes its bad block with good blocks from other peers (blame by v2 leaf
                  hashes); it never answers hash requests

It prints one JSON line per connection when it ends:
{"mode":..., "event":"closed", "seconds":..., "at":..., "messages_sent":..., "misbehaved":..., "by":...}
where "misbehaved" says the connection got as far as sending the misbehaviour (a bare
connect, such as a test's readiness probe, did not) and "by" is "remote" when the other
side hung up (end of stream, reset, broken pipe) and "self" when this peer gave up (a
handshake for another torrent, say); "at" is the wall-clock time of the close.

Usage: hostile_peer.py MODE --port N --info-hash HEX --pieces N --piece-length N
"""
import argparse
import json
import os
import socket
import struct
import threading
import time

PSTR = b"BitTorrent protocol"


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def msg(mid, payload=b""):
    return struct.pack(">IB", len(payload) + 1, mid) + payload


def serve(conn, args):
    start = time.time()
    sent = 0
    misbehaved = False
    by = "self"
    info_hash = bytes.fromhex(args.info_hash)
    try:
        hs = recv_exact(conn, 68)
        if hs[1:20] != PSTR or hs[28:48] != info_hash:
            return
        reserved = bytearray(8)
        reserved[7] |= 0x04  # fast extension
        conn.sendall(bytes([19]) + PSTR + bytes(reserved) + info_hash + b"-XX0001-" + os.urandom(12))
        nbytes = (args.pieces + 7) // 8
        full = bytearray(b"\xff" * nbytes)
        if args.pieces % 8:
            full[-1] = (0xFF << (8 - args.pieces % 8)) & 0xFF
        mode = args.mode
        if mode == "bad_bitfield":
            conn.sendall(msg(5, bytes(full) + b"\xff\xff"))
            sent += 1
            misbehaved = True
        elif mode == "choked_requests":
            conn.sendall(msg(15))  # have none
            for i in range(2000):
                conn.sendall(msg(6, struct.pack(">III", i % args.pieces, 0, 16384)))
                sent += 1
                misbehaved = True
        else:
            conn.sendall(msg(5, bytes(full)) + msg(1))  # bitfield + unchoke
            sent += 2
            if mode == "oversized":
                conn.sendall(struct.pack(">I", 16 << 20) + b"\x07" + os.urandom(1024))
                sent += 1
                misbehaved = True
            elif mode == "out_of_range":
                conn.sendall(msg(4, struct.pack(">I", args.pieces + 5)))
                sent += 1
                misbehaved = True
            elif mode == "unrequested":
                conn.sendall(msg(7, struct.pack(">II", 0, 0) + os.urandom(16384)))
                sent += 1
                misbehaved = True
        # Keep reading; answer requests (corrupt mode) until the other side hangs up.
        while True:
            head = recv_exact(conn, 4)
            (length,) = struct.unpack(">I", head)
            body = recv_exact(conn, length) if length else b""
            if mode == "corrupt" and body[:1] == b"\x06":
                index, begin, ln = struct.unpack(">III", body[1:13])
                conn.sendall(msg(7, struct.pack(">II", index, begin) + os.urandom(ln)))
                sent += 1
                misbehaved = True
            elif mode == "corrupt_block0" and body[:1] == b"\x06":
                index, begin, ln = struct.unpack(">III", body[1:13])
                if begin == 0:
                    conn.sendall(msg(7, struct.pack(">II", index, begin) + os.urandom(ln)))
                    misbehaved = True
                else:
                    conn.sendall(msg(16, body[1:13]))  # reject: another peer must send it
                sent += 1
    except (ConnectionError, OSError):
        by = "remote"  # end of stream (recv_exact), a reset or a broken pipe
    finally:
        print(json.dumps({"mode": args.mode, "event": "closed", "seconds": round(time.time() - start, 3),
                          "at": round(time.time(), 3), "messages_sent": sent, "misbehaved": misbehaved, "by": by}), flush=True)
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["corrupt", "oversized", "out_of_range", "bad_bitfield", "choked_requests",
                                     "unrequested", "corrupt_block0"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--info-hash", required=True)
    ap.add_argument("--pieces", type=int, required=True)
    ap.add_argument("--piece-length", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(16)
    srv.settimeout(0.5)
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        print(json.dumps({"mode": args.mode, "event": "connected"}), flush=True)
        threading.Thread(target=serve, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    main()
