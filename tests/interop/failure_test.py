#!/usr/bin/python3
"""Downloads that cannot go well: an unreachable tracker, a tracker that refuses, no
peers at all, a full disk, an unwritable folder, files already present with wrong data.
Each must end with a clear message and a meaningful exit code, and keep verified data.

Usage: failure_test.py --shoal PATH  (needs root for the tmpfs mounts)
"""
import argparse
import http.server
import os
import ssl
import subprocess
import threading

import harness as h


class RefusingTracker(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"d14:failure reason27:torrent not registered heree"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def download(run, torrent, dst, log, *extra, timeout=120):
    argv = [run.shoal, "download", torrent, "-d", dst, "--port", str(h.free_port()), "--local", "--seed-time", "0",
            *extra]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", "", ""
    with open(run.path(log), "w") as f:
        f.write(p.stdout + p.stderr)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "failure")
    mounts = []
    try:
        src = run.path("src")
        name = "payload.bin"
        h.write_random(os.path.join(src, name), 48 << 20, seed=5)
        dead = h.free_port()
        t_dead = run.path("dead.torrent")
        h.shoal_create(run, os.path.join(src, name), t_dead, "--v1", "-t", f"http://127.0.0.1:{dead}/announce")

        # 1. Unreachable tracker, no peers: gives up after --stop-timeout with exit code 4.
        rc, out, err = download(run, t_dead, run.path("d1"), "unreachable.log", "--stop-timeout", "3")
        run.check("unreachable tracker: exit code 4", rc == 4, f"exit {rc}: {err[-300:]}")
        run.check("unreachable tracker: the message names the tracker and the reason",
                  f"127.0.0.1:{dead}" in err and "refused" in err.lower(), err[-300:])

        # 2. A tracker that answers with a failure reason.
        srv = http.server.HTTPServer(("127.0.0.1", 0), RefusingTracker)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        t_ref = run.path("refuse.torrent")
        h.shoal_create(run, os.path.join(src, name), t_ref, "--v1", "-t",
                       f"http://127.0.0.1:{srv.server_address[1]}/announce")
        rc, out, err = download(run, t_ref, run.path("d2"), "refused.log", "--stop-timeout", "3")
        run.check("tracker failure reason: exit code 4 and the tracker's words shown",
                  rc == 4 and "torrent not registered here" in err, f"exit {rc}: {err[-300:]}")
        srv.shutdown()

        # 3. No trackers and no peers: a warning at once, then exit 4.
        t_none = run.path("none.torrent")
        none_info = h.shoal_create(run, os.path.join(src, name), t_none, "--v1")
        rc, out, err = download(run, t_none, run.path("d3"), "nopeers.log", "--stop-timeout", "2")
        run.check("no peers: warned and exit code 4", rc == 4 and "no trackers" in err and "no peers" in err,
                  f"exit {rc}: {err[-300:]}")

        # A seeder for the rest.
        sport = h.free_port()
        seed = h.shoal_seed(run, t_none, src, sport, "seed.log")
        h.wait_listening(sport)
        peer = ["--peer", f"127.0.0.1:{sport}"]

        # 4. Full disk: a 24 MiB tmpfs for 48 MiB of data.
        full = run.path("full")
        os.makedirs(full)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", full], check=True)
        mounts.append(full)
        rc, out, err = download(run, t_none, full, "full.log", *peer)
        run.check("full disk: exit code 1", rc == 1, f"exit {rc}")
        run.check("full disk: the message says the disk is full and which file",
                  "No space left on device" in err and name in err, err[-300:])
        # Room again: the verified data must still count (resume data, or a check of the files).
        subprocess.run(["mount", "-o", "remount,size=128m", full], check=True)
        rc, out, err = download(run, t_none, full, "full-again.log", "--json-progress", *peer)
        run.check("after freeing space the download completes", rc == 0, f"exit {rc}: {err[-300:]}")
        summ = h.summary(run, "full-again.log") if os.path.exists(run.path("full-again.log")) else None
        got = (summ or {}).get("downloaded", 1 << 60)
        run.check("verified data from before the failure is kept (not downloaded again)", got < 40 << 20,
                  f"downloaded {got} bytes of 48 MiB")
        run.check("full disk: result byte-identical", h.same_tree(src, full, [name]))

        # 5. Unwritable folder: a read-only mount, and a path under a regular file.
        ro = run.path("ro")
        os.makedirs(ro)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", ro], check=True)
        mounts.append(ro)
        rc, out, err = download(run, t_none, ro, "ro.log", *peer)
        run.check("read-only folder: exit code 1 and says so", rc == 1 and "not writable" in err,
                  f"exit {rc}: {err[-300:]}")
        blocker = run.path("a-file")
        open(blocker, "w").close()
        rc, out, err = download(run, t_none, os.path.join(blocker, "sub"), "notdir.log", *peer)
        run.check("folder under a regular file: exit code 1 and says why",
                  rc == 1 and "cannot create the download folder" in err, f"exit {rc}: {err[-300:]}")

        # 6. Files already there with wrong data (some pieces right): checked, fixed, correct.
        wrong = run.path("wrong")
        os.makedirs(wrong)
        data = bytearray(open(os.path.join(src, name), "rb").read())
        plen = none_info["piece_size"]
        bad = set()
        for off in range(0, len(data), 3 << 20):
            data[off:off + 4096] = os.urandom(4096)
            bad |= {off // plen, min(off + 4095, len(data) - 1) // plen}
        # Exactly the damaged pieces come back from the one peer (no other source, so no
        # duplicate blocks): their sizes, the last piece's being what is left.
        want_bytes = sum(min(plen, len(data) - p * plen) for p in bad)
        open(os.path.join(wrong, name), "wb").write(data)
        rc, out, err = download(run, t_none, wrong, "wrong.log", "--json-progress", *peer)
        run.check("wrong data on disk: download completes", rc == 0, f"exit {rc}: {err[-300:]}")
        summ = h.summary(run, "wrong.log") or {}
        run.check(f"wrong data on disk: only the {len(bad)} bad pieces are fetched ({want_bytes} bytes)",
                  summ.get("downloaded") == want_bytes and summ.get("wasted", 0) == 0,
                  f"downloaded {summ.get('downloaded')}, wasted {summ.get('wasted')}")
        run.check("wrong data on disk: result byte-identical", h.same_tree(src, wrong, [name]))
        # 7. The .torrent by URL: over HTTP it works; over HTTPS a self-signed certificate is refused.
        www = run.path("www")
        os.makedirs(www)
        subprocess.run(["cp", t_none, os.path.join(www, "x.torrent")], check=True)
        web = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=www, **k))
        threading.Thread(target=web.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{web.server_address[1]}/x.torrent"
        rc, out, err = download(run, url, run.path("byurl"), "byurl.log", *peer)
        run.check("a torrent by http:// URL downloads", rc == 0 and h.same_tree(src, run.path("byurl"), [name]),
                  f"exit {rc}: {err[-300:]}")
        rc, out, err = download(run, url.replace("x.torrent", "missing.torrent"), run.path("d404"), "404.log")
        run.check("a missing URL: exit 1 naming the HTTP status", rc == 1 and "404" in err, f"exit {rc}: {err[-300:]}")
        web.shutdown()
        key, cert = run.path("key.pem"), run.path("cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
        tls = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=www, **k))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        rc, out, err = download(run, f"https://127.0.0.1:{tls.server_address[1]}/x.torrent", run.path("tls"),
                                "tls.log")
        run.check("https:// with an untrusted certificate is refused (exit 1, says why)",
                  rc == 1 and "certificate verify failed" in err, f"exit {rc}: {err[-300:]}")
        tls.shutdown()
        run.stop(seed)
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", m])
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
