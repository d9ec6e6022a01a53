#!/usr/bin/python3
"""A small HTTP CONNECT proxy for tests: answers CONNECT host:port with 200 and relays
bytes both ways, optionally requiring Basic credentials (407 otherwise). Prints one JSON
line per request on stdout.

Usage: connect_proxy.py --bind ADDR --port PORT [--user U --password P]
"""
import argparse
import base64
import json
import socket
import sys
import threading


def log(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def handle(c, want_auth):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(1)
        if not d or len(head) > 8192:
            c.close()
            return
        head += d
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    if len(parts) != 3 or parts[0] != "CONNECT":
        log(refused=lines[0], why="not CONNECT")
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    target = parts[1]
    if want_auth and headers.get("proxy-authorization") != want_auth:
        log(refused=target, why="credentials")
        c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                  b"Content-Length: 0\r\n\r\n")
        c.close()
        return
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    try:
        up = socket.create_connection((host, int(port)), timeout=5)
        up.settimeout(None)
    except OSError as e:
        log(refused=target, why=str(e))
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    log(connect=target)
    c.sendall(b"HTTP/1.1 200 Connection established\r\nProxy-Agent: shoal-test\r\n\r\n")
    threading.Thread(target=pipe, args=(c, up), daemon=True).start()
    threading.Thread(target=pipe, args=(up, c), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user")
    ap.add_argument("--password", default="")
    a = ap.parse_args()
    want = None
    if a.user:
        want = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(64)
    log(ready=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, want), daemon=True).start()


if __name__ == "__main__":
    main()
