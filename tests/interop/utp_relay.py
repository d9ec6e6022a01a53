#!/usr/bin/env python3
"""A UDP relay that adds delay and random loss, both ways (netem is not available here).

    utp_relay.py --listen PORT --target HOST:PORT [--delay-ms 50] [--loss 0.01]

Datagrams from a client to PORT go to the target from an upstream socket of that client's
own (one per client address), so the target's replies can be told apart and go back to
the client they belong to. Each datagram is dropped with probability --loss, otherwise
held for --delay-ms (plus up to --jitter-ms) before it is sent on, in each direction.
Prints "listening on HOST:PORT" once bound (--listen 0 picks a port), and counters on
SIGTERM/SIGINT. Used by uTP interop tests and benchmarks.
"""
import argparse
import heapq
import random
import selectors
import signal
import socket
import sys
import time


def parse_hostport(s):
    host, _, port = s.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, required=True, help="UDP port to listen on (0: any)")
    ap.add_argument("--listen-host", default="127.0.0.1")
    ap.add_argument("--target", required=True, help="HOST:PORT to relay to")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added in each direction")
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="extra random delay, 0..N ms (may reorder)")
    ap.add_argument("--loss", type=float, default=0.0, help="drop probability per datagram, each direction")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--idle-timeout", type=float, default=300.0, help="forget a client silent this long (s)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    target = parse_hostport(args.target)
    family = socket.AF_INET6 if ":" in args.listen_host else socket.AF_INET
    tfamily = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    front = socket.socket(family, socket.SOCK_DGRAM)
    front.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    front.bind((args.listen_host, args.listen))
    front.setblocking(False)
    print("listening on %s:%d" % (args.listen_host, front.getsockname()[1]), flush=True)

    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, None)
    upstream = {}  # client address -> [socket, last seen]
    queue = []  # (due, counter, socket, data, address)
    counter = 0
    stats = {"in": 0, "dropped": 0, "sent": 0, "clients": 0}
    running = [True]

    def stop(*_):
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def schedule(sock, data, addr):
        nonlocal counter
        stats["in"] += 1
        if args.loss > 0 and rng.random() < args.loss:
            stats["dropped"] += 1
            return
        due = time.monotonic() + (args.delay_ms + (rng.random() * args.jitter_ms if args.jitter_ms else 0)) / 1000
        counter += 1
        heapq.heappush(queue, (due, counter, sock, data, addr))

    last_sweep = time.monotonic()
    while running[0]:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, sock, data, addr = heapq.heappop(queue)
            try:
                sock.sendto(data, addr)
                stats["sent"] += 1
            except OSError:
                pass
        timeout = max(0.0, queue[0][0] - now) if queue else 0.5
        for key, _ in sel.select(min(timeout, 0.5)):
            sock = key.fileobj
            for _ in range(256):
                try:
                    data, addr = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue  # ICMP errors: keep going
                if sock is front:
                    entry = upstream.get(addr)
                    if entry is None:
                        up = socket.socket(tfamily, socket.SOCK_DGRAM)
                        up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                        up.bind(("::" if tfamily == socket.AF_INET6 else "0.0.0.0", 0))
                        up.setblocking(False)
                        entry = upstream[addr] = [up, now]
                        sel.register(up, selectors.EVENT_READ, addr)
                        stats["clients"] += 1
                    entry[1] = now
                    schedule(entry[0], data, target)
                else:
                    client = key.data
                    if client in upstream:
                        upstream[client][1] = now
                    schedule(front, data, client)
        if now - last_sweep > 10:
            last_sweep = now
            for addr, (up, seen) in list(upstream.items()):
                if now - seen > args.idle_timeout:
                    sel.unregister(up)
                    up.close()
                    del upstream[addr]
    print("relay: %(in)d in, %(dropped)d dropped, %(sent)d sent, %(clients)d clients" % stats, file=sys.stderr,
          flush=True)


if __name__ == "__main__":
    main()
