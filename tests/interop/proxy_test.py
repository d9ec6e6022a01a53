#!/usr/bin/python3
"""Downloads whose only route is a proxy. A network namespace holds opentracker and a
libtorrent seeder, both on the namespace's own 127.0.0.1, and the proxies, on a veth
address the host can reach: a real SOCKS5 server (Debian's microsocks, with a user name
and password) and a small HTTP CONNECT proxy (connect_proxy.py). shoal runs outside the
namespace with --local: 127.0.0.1 there is its own loopback, so the tracker and the
seeder exist for it only through the proxy.

Checks: the download completes byte for byte through each proxy (and a magnet link's
metadata too, and a .torrent by https:// URL with TLS inside the tunnel); the proxy's log
shows the tracker announce and the peer connection; a wrong password fails with a clear
error; a udp:// tracker works through a SOCKS5 UDP association (a small SOCKS5 server of
the test's own, socks5_udp_proxy.py: microsocks has no UDP) and is skipped with a clear
message behind an HTTP proxy; a bad --proxy URL is a usage error.
Needs root (it builds the namespace).

Usage: proxy_test.py --shoal PATH
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import time

import harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
USER, PASSWORD = "shoal", "s3cret"


def wait_tcp(inns, addr, port, timeout=15):
    """Waits until something listens on addr:port inside the namespace."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(inns + [h.PY, "-c", f"import socket; socket.create_connection(('{addr}', {port}), 1)"],
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return True
        time.sleep(0.2)
    return False


def wait_seeder_announced(inns, tport, ih, timeout=30):
    """Waits until opentracker's scrape counts one seeder for the info-hash."""
    q = "".join("%" + ih[i:i + 2] for i in range(0, 40, 2))
    code = (f"import urllib.request, sys; b = urllib.request.urlopen('http://127.0.0.1:{tport}/scrape?info_hash={q}', "
            f"timeout=2).read(); sys.exit(0 if b'8:completei1e' in b else 1)")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if subprocess.run(inns + [h.PY, "-c", code], stderr=subprocess.DEVNULL).returncode == 0:
            return True
        time.sleep(0.5)
    return False


def text(path):
    return open(path, "rb").read().decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=8, help="MiB of test data")
    args = ap.parse_args()
    run = h.Run(args.shoal, "proxy")
    n = os.getpid() % 200 + 20
    ns, host_if, ns_if = f"shoal-px{n}", f"px{n}h", f"px{n}n"
    host_ip, ns_ip = f"10.79.{n}.1", f"10.79.{n}.2"
    sh = lambda *c: subprocess.run(list(c), check=True)  # noqa: E731

    def cleanup():
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", host_if], stderr=subprocess.DEVNULL)

    cleanup()
    try:
        if not shutil.which("microsocks"):
            run.check("microsocks installed (scripts/install-deps)", False)
            raise RuntimeError("microsocks is missing")
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", ns, "addr", "add", f"{ns_ip}/24", "dev", ns_if)
        sh("ip", "-n", ns, "link", "set", ns_if, "up")
        inns = ["ip", "netns", "exec", ns]
        os.chmod(run.dir, 0o755)

        name = "payload.bin"
        src = run.path("src")
        h.write_random(os.path.join(src, name), args.size << 20, seed=11)
        plain = run.path("plain.torrent")
        ih = h.shoal_create(run, os.path.join(src, name), plain, "--v1")["info_hash_v1"]

        # opentracker inside the namespace, on its loopback.
        wl = run.path("whitelist.txt")
        with open(wl, "w") as f:
            f.write(ih + "\n")
        os.chmod(wl, 0o644)
        tport = h.free_port()
        run.spawn(inns + ["opentracker", "-i", "127.0.0.1", "-p", str(tport), "-P", str(tport), "-w", wl,
                          "-u", "nobody", "-d", "/"], "opentracker.log")
        if not wait_tcp(inns, "127.0.0.1", tport):
            raise RuntimeError("opentracker did not start")
        announce = f"http://127.0.0.1:{tport}/announce"
        http_t = run.path("http.torrent")
        h.shoal_create(run, os.path.join(src, name), http_t, "--v1", "-t", announce)
        udp_t = run.path("udp.torrent")
        h.shoal_create(run, os.path.join(src, name), udp_t, "--v1", "-t", f"udp://127.0.0.1:{tport}")

        # The libtorrent seeder, announcing to that tracker from inside the namespace.
        sport = h.free_port()
        run.spawn(inns + [h.PY, h.LT_PEER, "seed", http_t, src, "--port", str(sport), "--seconds", "600"],
                  "lt-seed.log")
        if not wait_tcp(inns, "127.0.0.1", sport, 30):
            raise RuntimeError("the libtorrent seeder did not start")
        # Until the seeder has announced, shoal's first announce would find nobody (and the
        # next one comes only after opentracker's interval).
        if not wait_seeder_announced(inns, tport, ih):
            raise RuntimeError("the libtorrent seeder did not announce to opentracker")

        # The proxies, reachable from the host at ns_ip.
        socks_port, http_port = h.free_port(), h.free_port()
        socks = run.spawn(inns + ["microsocks", "-i", ns_ip, "-p", str(socks_port), "-u", USER, "-P", PASSWORD],
                          "microsocks.log")
        cproxy = run.spawn(inns + [h.PY, os.path.join(HERE, "connect_proxy.py"), "--bind", ns_ip, "--port",
                                   str(http_port)], "connect-proxy.log")
        for port in (socks_port, http_port):
            if not wait_tcp(inns, ns_ip, port):
                raise RuntimeError(f"a proxy did not start on {ns_ip}:{port}")
        # Nothing of the namespace is reachable without a proxy (the premise of the test).
        with socket.socket() as s:
            s.settimeout(1)
            run.check("without a proxy the tracker is unreachable", s.connect_ex(("127.0.0.1", tport)) != 0)

        socks_url = f"socks5://{USER}:{PASSWORD}@{ns_ip}:{socks_port}"
        common = ["--no-dht", "--no-lsd", "--seed-time", "0", "-v"]

        # 1. Through SOCKS5 with a user name and password.
        dst = run.path("dst-socks")
        rc = h.shoal_download(run, http_t, dst, h.free_port(), "socks.log", "--proxy", socks_url, *common,
                              "--stop-timeout", "60", timeout=120)
        run.check("SOCKS5: download completes", rc == 0, f"exit {rc}")
        run.check("SOCKS5: bytes identical", h.same_tree(src, dst, [name]))
        slog = text(socks.log)
        run.check("SOCKS5: the tracker announce went through microsocks", f"connected to 127.0.0.1:{tport}" in slog,
                  slog[-500:])
        run.check("SOCKS5: the peer connection went through microsocks", f"connected to 127.0.0.1:{sport}" in slog,
                  slog[-500:])

        # 1b. A magnet link: the metadata (BEP 9) and the data both come through the proxy.
        dst = run.path("dst-magnet")
        before = text(socks.log).count(f"connected to 127.0.0.1:{sport}")
        magnet = f"magnet:?xt=urn:btih:{ih}&x.pe=127.0.0.1:{sport}"
        rc = h.shoal_download(run, magnet, dst, h.free_port(), "magnet.log", "--proxy", socks_url, *common,
                              "--stop-timeout", "60", timeout=120)
        run.check("SOCKS5 magnet: metadata and data through the proxy, bytes identical",
                  rc == 0 and h.same_tree(src, dst, [name]), f"exit {rc}")
        run.check("SOCKS5 magnet: the metadata connection went through microsocks too",
                  text(socks.log).count(f"connected to 127.0.0.1:{sport}") >= before + 2)

        # 1c. A .torrent by https:// URL inside the namespace: TLS runs inside the SOCKS5
        # tunnel and the certificate (trusted through SSL_CERT_FILE) is checked for 127.0.0.1.
        key, cert = run.path("key.pem"), run.path("cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        www = run.path("www")
        os.makedirs(www)
        shutil.copy(http_t, os.path.join(www, "t.torrent"))
        https_port = h.free_port()
        server = (f"import http.server, ssl, functools\n"
                  f"s = http.server.ThreadingHTTPServer(('127.0.0.1', {https_port}), functools.partial("
                  f"http.server.SimpleHTTPRequestHandler, directory={www!r}))\n"
                  f"c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nc.load_cert_chain({cert!r}, {key!r})\n"
                  f"s.socket = c.wrap_socket(s.socket, server_side=True)\ns.serve_forever()\n")
        run.spawn(inns + [h.PY, "-c", server], "https.log")
        if not wait_tcp(inns, "127.0.0.1", https_port):
            raise RuntimeError("the HTTPS server did not start")
        dst = run.path("dst-https")
        os.environ["SSL_CERT_FILE"] = cert
        try:
            rc = h.shoal_download(run, f"https://127.0.0.1:{https_port}/t.torrent", dst, h.free_port(), "https.log",
                                  "--proxy", socks_url, *common, "--stop-timeout", "60", timeout=120)
        finally:
            del os.environ["SSL_CERT_FILE"]
        run.check("https:// .torrent through SOCKS5 (TLS in the tunnel, certificate checked), download completes",
                  rc == 0 and h.same_tree(src, dst, [name]), f"exit {rc}: {text(run.path('https.log'))[-400:]}")
        run.check("https://: the TLS connection went through microsocks",
                  f"connected to 127.0.0.1:{https_port}" in text(socks.log))

        # 2. Through HTTP CONNECT.
        dst = run.path("dst-http")
        rc = h.shoal_download(run, http_t, dst, h.free_port(), "http.log", "--proxy", f"http://{ns_ip}:{http_port}",
                              *common, "--stop-timeout", "60", timeout=120)
        run.check("HTTP CONNECT: download completes", rc == 0, f"exit {rc}")
        run.check("HTTP CONNECT: bytes identical", h.same_tree(src, dst, [name]))
        targets = [json.loads(l).get("connect") for l in text(cproxy.log).splitlines() if l.startswith("{")]
        run.check("HTTP CONNECT: tracker and peer went through the proxy",
                  f"127.0.0.1:{tport}" in targets and f"127.0.0.1:{sport}" in targets, str(targets))

        # 3. A wrong password: a clear error, no download.
        dst = run.path("dst-wrong")
        bad = f"socks5://{USER}:wrong@{ns_ip}:{socks_port}"
        rc = h.shoal_download(run, http_t, dst, h.free_port(), "wrong.log", "--proxy", bad, *common,
                              "--stop-timeout", "8", timeout=60)
        out = text(run.path("wrong.log"))
        run.check("wrong password: the download fails", rc not in (0, "timeout"), f"exit {rc}")
        run.check("wrong password: the error says so",
                  "authentication failed" in out or "wrong user name or password" in out, out[-600:])
        run.check("wrong password: the password is not printed", "wrong@" not in out and ":wrong" not in out)

        # 4. A UDP tracker through a SOCKS5 UDP association (microsocks has no UDP: a small
        # server of the test's own), and the peer through the same server's CONNECT.
        udp_proxy_port = h.free_port()
        uproxy = run.spawn(inns + [h.PY, os.path.join(HERE, "socks5_udp_proxy.py"), "--bind", ns_ip, "--port",
                                   str(udp_proxy_port)], "socks5-udp-proxy.log")
        if not wait_tcp(inns, ns_ip, udp_proxy_port):
            raise RuntimeError("the SOCKS5 UDP proxy did not start")
        dst = run.path("dst-udp")
        rc = h.shoal_download(run, udp_t, dst, h.free_port(), "udp.log", "--proxy",
                              f"socks5://{ns_ip}:{udp_proxy_port}", *common, "--stop-timeout", "60", timeout=120)
        events = [json.loads(l) for l in text(uproxy.log).splitlines() if l.startswith("{")]
        run.check("UDP tracker via SOCKS5 UDP ASSOCIATE: download completes, bytes identical",
                  rc == 0 and h.same_tree(src, dst, [name]), f"exit {rc}")
        run.check("UDP tracker via SOCKS5: connect and announce relayed to the tracker, answers relayed back",
                  sum(1 for e in events if e.get("udp") == "out" and e.get("to") == f"127.0.0.1:{tport}") >= 2 and
                  sum(1 for e in events if e.get("udp") == "in") >= 2, json.dumps(events[-6:]))
        run.check("UDP tracker via SOCKS5: the peer connection went through the same proxy",
                  any(e.get("tcp") == "connect" and e.get("to") == f"127.0.0.1:{sport}" for e in events))

        # 4b. An HTTP proxy cannot carry datagrams: the UDP tracker is skipped, clearly.
        rc = h.shoal_download(run, udp_t, run.path("dst-udp-http"), h.free_port(), "udp-http.log", "--proxy",
                              f"http://{ns_ip}:{http_port}", *common, "--stop-timeout", "5", timeout=60)
        out = text(run.path("udp-http.log"))
        run.check("UDP tracker with an HTTP proxy: skipped with a clear message",
                  "skipped: UDP trackers are not used through an HTTP proxy" in out, out[-600:])

        # 5. A malformed --proxy is a usage error naming the problem.
        r = subprocess.run([run.shoal, "download", plain, "-d", run.path("x"), "--local", "--proxy", "socks4://h:1"],
                           capture_output=True, text=True, timeout=30)
        run.check("bad --proxy: exit 2 with the reason", r.returncode == 2 and "unsupported scheme" in r.stderr,
                  f"exit {r.returncode}: {r.stderr.strip()}")
    finally:
        rc = run.finish()
        cleanup()
    return rc


if __name__ == "__main__":
    h.main_guard(main)
