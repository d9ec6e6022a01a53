#!/usr/bin/python3
"""An HTTP/1.1 file server for web seed tests (BEP 19), with keep-alive and byte ranges,
and misbehaviours on request:

  --no-range       answer every GET with 200 and the whole file (ignore Range)
  --redirect-to U  answer every GET with 302 to U + the path asked
  --fail-first N   answer the first N GETs with 503 (with --retry-after S: a Retry-After)
  --corrupt        flip one byte in every 16 KiB of every file served
  --rate B         send at most B bytes per second (per connection)
  --cut-first N    the first N file replies stop half way and close the connection
  --log FILE       one JSON line per request: path, range, status, bytes sent
  --cert C --key K HTTPS with this certificate

Usage: webseed_server.py --root DIR --port PORT [options]
"""
import argparse
import http.server
import json
import os
import re
import ssl
import threading
import time
import urllib.parse

ARGS = None
LOCK = threading.Lock()
COUNT = {"requests": 0}


def log(entry):
    if not ARGS.log:
        return
    with LOCK, open(ARGS.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply_empty(self, status, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with LOCK:
            COUNT["requests"] += 1
            n = COUNT["requests"]
        rng = self.headers.get("Range")
        entry = {"path": self.path, "range": rng}
        if n <= ARGS.fail_first:
            extra = [("Retry-After", str(ARGS.retry_after))] if ARGS.retry_after is not None else []
            self.reply_empty(503, extra)
            log({**entry, "status": 503, "bytes": 0})
            return
        if ARGS.redirect_to:
            self.reply_empty(302, [("Location", ARGS.redirect_to + self.path)])
            log({**entry, "status": 302, "bytes": 0})
            return
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        full = os.path.realpath(os.path.join(ARGS.root, rel))
        if not full.startswith(os.path.realpath(ARGS.root) + os.sep) or not os.path.isfile(full):
            self.reply_empty(404)
            log({**entry, "status": 404, "bytes": 0})
            return
        size = os.path.getsize(full)
        first, last = 0, size - 1
        status = 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m and not ARGS.no_range:
            first = int(m.group(1))
            last = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if first > last:
                self.reply_empty(416, [("Content-Range", f"bytes */{size}")])
                log({**entry, "status": 416, "bytes": 0})
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        sent = 0
        start = time.time()
        with LOCK:
            COUNT["files"] = COUNT.get("files", 0) + 1
            cut = COUNT["files"] <= ARGS.cut_first
        stop_at = first + (last - first + 1) // 2 if cut else last
        with open(full, "rb") as f:
            f.seek(first)
            pos = first
            while pos <= stop_at:
                data = bytearray(f.read(min(65536, stop_at - pos + 1)))
                if not data:
                    break
                if ARGS.corrupt:
                    # One byte in every 16 KiB block, whatever the piece size.
                    k = (-pos + 100) % 16384
                    while k < len(data):
                        data[k] ^= 0xFF
                        k += 16384
                try:
                    self.wfile.write(data)
                except OSError:
                    break
                pos += len(data)
                sent += len(data)
                if ARGS.rate:
                    ahead = sent / ARGS.rate - (time.time() - start)
                    if ahead > 0:
                        time.sleep(ahead)
        if cut:
            self.close_connection = True
        log({**entry, "status": status, "bytes": sent, **({"cut": True} if cut else {})})


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--redirect-to")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--retry-after", type=int)
    ap.add_argument("--corrupt", action="store_true")
    ap.add_argument("--cut-first", type=int, default=0,
                    help="the first N file replies stop half way and the connection closes")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ARGS = ap.parse_args()
    srv = http.server.ThreadingHTTPServer((ARGS.bind, ARGS.port), Handler)
    srv.daemon_threads = True
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
