#!/usr/bin/python3
"""A small SOCKS5 server for tests (RFC 1928, no authentication) that does what microsocks
does not: UDP ASSOCIATE. Also CONNECT, so a whole download can go through it. The UDP
relay binds to the server's address, forwards unwrapped datagrams from the client's IP to
their destination (names resolved here) and wraps the answers. One JSON line per event on
stdout.

Usage: socks5_udp_proxy.py --bind ADDR --port PORT
"""
import argparse
import json
import socket
import struct
import sys
import threading


def log(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def read_address(c):
    atyp = recv_exact(c, 1)[0]
    if atyp == 1:
        host = socket.inet_ntop(socket.AF_INET, recv_exact(c, 4))
    elif atyp == 4:
        host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
    elif atyp == 3:
        host = recv_exact(c, recv_exact(c, 1)[0]).decode("latin-1")
    else:
        raise ValueError("address type")
    return host, struct.unpack(">H", recv_exact(c, 2))[0]


def encode_address(host, port):
    try:
        return b"\x01" + socket.inet_pton(socket.AF_INET, host) + struct.pack(">H", port)
    except OSError:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)


def unwrap(d):
    """(host, port, payload) of a SOCKS5 UDP datagram, or None."""
    if len(d) < 4 or d[0:3] != b"\0\0\0":
        return None
    atyp, at = d[3], 4
    if atyp == 1:
        host, at = socket.inet_ntop(socket.AF_INET, d[at:at + 4]), at + 4
    elif atyp == 4:
        host, at = socket.inet_ntop(socket.AF_INET6, d[at:at + 16]), at + 16
    elif atyp == 3:
        n = d[at]
        host, at = d[at + 1:at + 1 + n].decode("latin-1"), at + 1 + n
    else:
        return None
    return host, struct.unpack(">H", d[at:at + 2])[0], d[at + 2:]


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


def relay(u, client_ip, stop):
    client = None
    u.settimeout(0.5)
    while not stop.is_set():
        try:
            d, src = u.recvfrom(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if src[0] == client_ip:
            parsed = unwrap(d)
            if not parsed:
                log(udp="bad datagram")
                continue
            host, port, payload = parsed
            client = src
            addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
            log(udp="out", to=f"{host}:{port}", bytes=len(payload))
            u.sendto(payload, addr)
        elif client:
            log(udp="in", frm=f"{src[0]}:{src[1]}", bytes=len(d))
            u.sendto(b"\0\0\0" + encode_address(src[0], src[1]) + d, client)


def handle(c, bind):
    try:
        head = recv_exact(c, 2)
        recv_exact(c, head[1])
        c.sendall(b"\x05\x00")
        ver, cmd, _ = recv_exact(c, 3)
        host, port = read_address(c)
        if cmd == 1:
            try:
                up = socket.create_connection((host, port), timeout=5)
                up.settimeout(None)
            except OSError:
                c.sendall(b"\x05\x05\x00" + encode_address("0.0.0.0", 0))
                c.close()
                return
            log(tcp="connect", to=f"{host}:{port}")
            c.sendall(b"\x05\x00\x00" + encode_address(*up.getsockname()[:2]))
            threading.Thread(target=pipe, args=(c, up), daemon=True).start()
            threading.Thread(target=pipe, args=(up, c), daemon=True).start()
        elif cmd == 3:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((bind, 0))
            log(udp="associate", client=f"{host}:{port}", relay=f"{bind}:{u.getsockname()[1]}")
            c.sendall(b"\x05\x00\x00" + encode_address(bind, u.getsockname()[1]))
            stop = threading.Event()
            threading.Thread(target=relay, args=(u, c.getpeername()[0], stop), daemon=True).start()
            # The association lives as long as the control connection.
            while c.recv(1024):
                pass
            stop.set()
            log(udp="closed")
            c.close()
        else:
            c.sendall(b"\x05\x07\x00" + encode_address("0.0.0.0", 0))
            c.close()
    except (EOFError, OSError, ValueError):
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(64)
    log(ready=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, a.bind), daemon=True).start()


if __name__ == "__main__":
    main()
