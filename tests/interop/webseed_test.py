#!/usr/bin/python3
"""Web seeds (BEP 19), every download checked byte for byte:
- web seed only (no peer at all): a single-file and multi-file torrents (nested folders, a
  space and a non-ASCII name, an empty file, sizes that are not multiples of the piece
  size; hybrid with pad files, v1 whose pieces span files, v2) from `python3 -m
  http.server` (which ignores Range: 200 with the whole file) and from a server with
  ranges and keep-alive (requests coalesce several pieces);
- a server that ignores ranges does not make shoal read a file once per piece;
- a redirecting server (302), a server that answers 503 (with Retry-After) before working,
  a 404 (back-off, then giving up on no progress);
- HTTPS (certificate checked against SSL_CERT_FILE) through an HTTP CONNECT proxy; an
  untrusted certificate refused;
- --web-seed adds a seed to a torrent without url-list; --no-web-seeds uses none; a magnet
  link's ws= is used once the metadata is in;
- a web seed serving corrupt data next to a libtorrent seeder: hash failures, the web seed
  dropped, the download completes from libtorrent;
- a good (slow) web seed and a (slow) libtorrent seeder both contribute bytes.

Usage: webseed_test.py --shoal PATH
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse

import bencoding
import harness as h

SERVER = os.path.join(h.HERE, "webseed_server.py")
PIECE = 64 * 1024


def start_server(run, root, label, *extra):
    port = h.free_port()
    log = run.path(f"{label}-access.jsonl")
    p = run.spawn([sys.executable, SERVER, "--root", root, "--port", str(port), "--log", log, *extra],
                  f"{label}-server.log")
    if not h.wait_listening(port):
        raise RuntimeError(f"{label}: web seed server did not start")
    return port, log, p


def start_plain_server(run, root, label):
    """python3 -m http.server: HTTP/1.0, no ranges."""
    port = h.free_port()
    p = run.spawn([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", root],
                  f"{label}-server.log")
    if not h.wait_listening(port):
        raise RuntimeError(f"{label}: http.server did not start")
    return port, p


def access(log):
    if not os.path.exists(log):
        return []
    return [json.loads(l) for l in open(log) if l.strip()]


def log_lines(run, log):
    return open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()


def download(run, torrent, label, *extra, timeout=120):
    dst = run.path("dst-" + label)
    os.makedirs(dst)
    log = f"{label}-shoal.log"
    stop = [] if "--stop-timeout" in extra else ["--stop-timeout", "40"]
    rc = h.shoal_download(run, torrent, dst, h.free_port(), log, "-v", "--seed-time", "0", "--no-dht", "--no-lsd",
                          *stop, *extra, timeout=timeout)
    return rc, dst, h.summary(run, log) or {}, log_lines(run, log)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "webseed")
    try:
        # --- test data: served from www/ (the torrents' files live under it) ---
        www = run.path("www")
        single = "single.bin"
        h.write_random(os.path.join(www, single), 10 * 1024 * 1024 + 12345, seed=1)
        multi = "multi dir"
        files = [f"{multi}/a b.txt", f"{multi}/sub/deeper/ünï.bin", f"{multi}/sub/empty", f"{multi}/z.bin",
                 f"{multi}/sub/small"]
        sizes = [300001, 2 * 1024 * 1024 + 777, 0, 1000000, 17]
        for i, (f, n) in enumerate(zip(files, sizes)):
            h.write_random(os.path.join(www, f), n, seed=10 + i)
        names = [multi + "/" + f.split("/", 1)[1] for f in files]

        def make(label, src, *extra):
            t = run.path(label + ".torrent")
            h.shoal_create(run, os.path.join(www, src), t, "--piece-size", str(PIECE), *extra)
            return t

        # --- 1. python3 -m http.server (no ranges), web seed only ---
        port, srv = start_plain_server(run, www, "plain")
        base = f"http://127.0.0.1:{port}/"
        t = make("single-plain", single, "--web-seed", base)
        rc, dst, s, log = download(run, t, "single-plain")
        run.check("http.server, single file: completes byte for byte", rc == 0 and h.same_tree(www, dst, [single]),
                  f"exit {rc}")
        run.check("http.server, single file: every byte from the web seed, no peer",
                  s.get("web_seed_downloaded") == os.path.getsize(os.path.join(www, single)), json.dumps(s))
        run.check("http.server, single file: the 200 reply is noticed (-v)",
                  any("ignores ranges" in l for l in log), "\n".join(log[-10:]))
        gets = [l for l in log_lines(run, "plain-server.log") if '"GET /' + single in l]
        run.check("http.server, single file: one read of the file serves every piece (160+ pieces, 10 MiB: more than 2 runs)",
                  1 <= len(gets) <= 2, f"{len(gets)} GETs")
        for v in ("v1", "hybrid"):
            t = make(f"multi-plain-{v}", multi, "--web-seed", base, *(["--v1"] if v == "v1" else []))
            rc, dst, s, log = download(run, t, f"multi-plain-{v}")
            ok = rc == 0 and h.same_tree(www, dst, names)
            run.check(f"http.server, multi-file {v}: completes byte for byte (space, UTF-8, empty file)", ok,
                      f"exit {rc}\n" + "\n".join(log[-10:]))
        run.stop(srv)

        # --- 1b. no ranges, and the first two replies break off half way: the pieces left
        # half-fetched must be fetched again, not stranded ---
        port, alog, srv = start_server(run, www, "cut", "--no-range", "--cut-first", "2")
        t = make("multi-cut", multi, "--web-seed", f"http://127.0.0.1:{port}/")
        rc, dst, s, log = download(run, t, "multi-cut")
        cut = [e for e in access(alog) if e.get("cut")]
        run.check("no ranges, replies cut half way: completes byte for byte after retrying",
                  rc == 0 and h.same_tree(www, dst, names) and len(cut) == 2,
                  f"exit {rc}, {len(cut)} cut replies\n" + "\n".join(log[-10:]))
        run.stop(srv)

        # --- 2. a server with ranges and keep-alive, web seed only ---
        port, alog, srv = start_server(run, www, "ranged")
        base = f"http://127.0.0.1:{port}"
        t = make("single-ranged", single, "--web-seed", base + "/" + single)
        rc, dst, s, log = download(run, t, "single-ranged")
        run.check("ranges, single file (URL names the file): completes byte for byte",
                  rc == 0 and h.same_tree(www, dst, [single]), f"exit {rc}\n" + "\n".join(log[-10:]))
        reqs = access(alog)
        pieces = -(-os.path.getsize(os.path.join(www, single)) // PIECE)
        # Runs are sized to the seed's measured rate (3 s of it, 1 MiB at first), so how many
        # requests a download takes depends on the machine's load; that consecutive pieces
        # share a request does not: the first asks for 1 MiB, and no piece has one to itself.
        longest = max([r.get("bytes", 0) for r in reqs] or [0])
        run.check("ranges, single file: 206 replies, several pieces per request",
                  reqs and all(r["status"] == 206 for r in reqs) and longest >= 2 * PIECE and len(reqs) < pieces,
                  f"{len(reqs)} requests for {pieces} pieces, the longest {longest} bytes")
        run.check("ranges, single file: the summary counts the web seed's bytes, -v names it",
                  s.get("web_seed_downloaded") == s.get("total_bytes") and s.get("web_seeds") == 1 and
                  any(f"web seed {base}/{single}: started" in l for l in log), json.dumps(s))
        for v in ("v1", "hybrid", "v2"):
            open(alog, "w").close()
            t = make(f"multi-ranged-{v}", multi, "--web-seed", base + "/", *([f"--{v}"] if v != "hybrid" else []))
            rc, dst, s, log = download(run, t, f"multi-ranged-{v}")
            run.check(f"ranges, multi-file {v}: completes byte for byte", rc == 0 and h.same_tree(www, dst, names),
                      f"exit {rc}\n" + "\n".join(log[-10:]))
            paths = {r["path"] for r in access(alog)}
            run.check(f"ranges, multi-file {v}: BEP 19 paths, percent-encoded",
                      "/multi%20dir/sub/deeper/%C3%BCn%C3%AF.bin" in paths and "/multi%20dir/a%20b.txt" in paths
                      and not any("empty" in p for p in paths), json.dumps(sorted(paths)))
            run.check(f"ranges, multi-file {v}: no pad file ever asked for",
                      not any(".pad" in p for p in paths), json.dumps(sorted(paths)))

        # --- 3. --web-seed on the command line; --no-web-seeds ---
        t_bare = run.path("single-bare.torrent")
        bare = h.shoal_create(run, os.path.join(www, single), t_bare, "--piece-size", str(PIECE))
        rc, dst, s, log = download(run, t_bare, "cli-web-seed", "--web-seed", base + "/" + single)
        run.check("--web-seed adds a seed to a torrent without url-list", rc == 0 and h.same_tree(www, dst, [single]),
                  f"exit {rc}")
        open(alog, "w").close()
        rc, dst, s, log = download(run, t, "no-web-seeds", "--no-web-seeds", "--stop-timeout", "4", timeout=60)
        run.check("--no-web-seeds: nothing asked of the url-list's server, no data",
                  rc != 0 and not access(alog) and s.get("have_bytes", 1) == 0, f"exit {rc}, {len(access(alog))} requests, {json.dumps(s)}")

        # A magnet link's ws: the metadata from a shoal seeder, data from both.
        seed_port = h.free_port()
        seeder = h.shoal_seed(run, t_bare, www, seed_port, "magnet-seeder.log")
        h.wait_listening(seed_port)
        open(alog, "w").close()
        link = (bare["magnet"] + f"&x.pe=127.0.0.1:{seed_port}&ws=" +
                urllib.parse.quote(base + "/" + single, safe=""))
        rc, dst, s, log = download(run, link, "magnet-ws", "--max-download-rate", "2MiB")
        run.stop(seeder)
        run.check("magnet link with ws=: completes byte for byte, the web seed sent data",
                  rc == 0 and h.same_tree(www, dst, [single]) and s.get("web_seed_downloaded", 0) > 0 and
                  any(r["status"] == 206 for r in access(alog)), f"exit {rc}, {json.dumps(s)}")

        # --- 4. a redirect, and 503 before success ---
        rport, rlog, rsrv = start_server(run, www, "redirect", "--redirect-to", base)
        rc, dst, s, log = download(run, t_bare, "redirect", "--web-seed", f"http://127.0.0.1:{rport}/{single}")
        run.check("302 to the real server: completes byte for byte", rc == 0 and h.same_tree(www, dst, [single]),
                  f"exit {rc}\n" + "\n".join(log[-10:]))
        run.check("302: the redirect is followed (the redirecting server saw requests, each got 302)",
                  access(rlog) and all(r["status"] == 302 for r in access(rlog)), json.dumps(access(rlog)[:3]))
        run.stop(rsrv)
        fport, flog, fsrv = start_server(run, www, "flaky", "--fail-first", "2", "--retry-after", "1")
        t0 = time.time()
        rc, dst, s, log = download(run, t_bare, "flaky", "--web-seed", f"http://127.0.0.1:{fport}/{single}")
        took = time.time() - t0
        statuses = [r["status"] for r in access(flog)]
        run.check("503 twice, then working: completes byte for byte", rc == 0 and h.same_tree(www, dst, [single]),
                  f"exit {rc}\n" + "\n".join(log[-10:]))
        run.check("503: backed off with Retry-After, logged, then served 206",
                  statuses[:2] == [503, 503] and 206 in statuses and
                  sum("HTTP 503" in l and "retrying in 1 s (Retry-After)" in l for l in log) == 2 and took >= 2,
                  f"{statuses[:5]}, {took:.1f} s\n" + "\n".join(l for l in log if "web seed" in l))
        run.stop(fsrv)
        nport, nlog, nsrv = start_server(run, www, "notfound")
        rc, dst, s, log = download(run, t_bare, "notfound", "--web-seed", f"http://127.0.0.1:{nport}/nothing-here",
                                   "--stop-timeout", "7", timeout=60)
        run.check("404: no data, the download gives up (exit 4), the error and back-off logged",
                  rc == 4 and any("HTTP 404" in l and "retrying in 5 s" in l for l in log) and
                  any("1 web seeds sending nothing" in l for l in log) and
                  len(access(nlog)) <= 3, f"exit {rc}, {len(access(nlog))} requests\n" + "\n".join(log[-5:]))
        run.stop(nsrv)

        # --- 5. HTTPS (certificate checked) through an HTTP CONNECT proxy ---
        cert, key = run.path("cert.pem"), run.path("key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        sport, slog, ssrv = start_server(run, www, "https", "--cert", cert, "--key", key)
        pport = h.free_port()
        proxy = run.spawn([sys.executable, os.path.join(h.HERE, "connect_proxy.py"), "--port", str(pport)],
                          "connect-proxy.log")
        h.wait_listening(pport)
        https_seed = f"https://127.0.0.1:{sport}/{single}"
        os.environ["SSL_CERT_FILE"] = cert
        try:
            rc, dst, s, log = download(run, t_bare, "https-proxy", "--web-seed", https_seed, "--proxy",
                                       f"http://127.0.0.1:{pport}")
        finally:
            del os.environ["SSL_CERT_FILE"]
        run.check("https web seed through an HTTP CONNECT proxy: completes byte for byte",
                  rc == 0 and h.same_tree(www, dst, [single]), f"exit {rc}\n" + "\n".join(log[-10:]))
        run.check("https web seed: the connection went through the proxy, the server answered 206",
                  f'"connect": "127.0.0.1:{sport}"' in open(proxy.log).read() and
                  any(r["status"] == 206 for r in access(slog)), open(proxy.log).read()[-300:])
        open(slog, "w").close()
        rc, dst, s, log = download(run, t_bare, "https-untrusted", "--web-seed", https_seed, "--stop-timeout", "4",
                                   timeout=60)
        run.check("https web seed with an untrusted certificate: refused, the TLS error logged, no data",
                  rc == 4 and not access(slog) and s.get("have_bytes", 1) == 0 and
                  any("web seed" in l and "TLS" in l and "certificate verify failed" in l for l in log),
                  f"exit {rc}\n" + "\n".join(l for l in log if "web seed" in l))
        run.stop(ssrv)
        run.stop(proxy)

        # --- 6. mixed swarms with a libtorrent seeder ---
        src_lt = www  # libtorrent seeds the same files
        cport, clog, csrv = start_server(run, www, "corrupt", "--corrupt")
        t_mix = make("single-corrupt", single, "--v1", "--web-seed", f"http://127.0.0.1:{cport}/{single}")
        lport = h.free_port()
        lp = h.lt_peer(run, "seed", t_mix, src_lt, lport, "corrupt-lt.log", seconds=200, max_upload=1 << 20)
        h.wait_listening(lport)
        h.wait_lt_seeding(lp)
        # libtorrent ignores its upload limit on loopback: shoal's download limit makes the
        # transfer last long enough for both sources to matter.
        rc, dst, s, log = download(run, t_mix, "corrupt", "--peer", f"127.0.0.1:{lport}", "--max-download-rate",
                                   "2MiB", timeout=150)
        run.stop(lp)
        run.check("corrupt web seed + libtorrent: completes byte for byte", rc == 0 and h.same_tree(www, dst, [single]),
                  f"exit {rc}\n" + "\n".join(log[-10:]))
        run.check("corrupt web seed: pieces failed their hash check and the seed was dropped",
                  s.get("hash_failures", 0) >= 3 and any("dropped: 3 pieces failed" in l for l in log) and
                  s.get("web_seeds") == 0 and
                  access(clog), json.dumps(s))
        run.check("corrupt web seed: counted apart from peers (no peer banned)", s.get("banned_peers") == 0,
                  json.dumps(s))
        run.stop(csrv)

        gport, glog, gsrv = start_server(run, www, "good-slow", "--rate", str(1 << 20))
        t_mix2 = make("single-mixed", single, "--v1", "--web-seed", f"http://127.0.0.1:{gport}/{single}")
        lport = h.free_port()
        lp = h.lt_peer(run, "seed", t_mix2, src_lt, lport, "mixed-lt.log", seconds=200, max_upload=1 << 20)
        h.wait_listening(lport)
        h.wait_lt_seeding(lp)
        rc, dst, s, log = download(run, t_mix2, "mixed", "--peer", f"127.0.0.1:{lport}", "--max-download-rate",
                                   "2MiB", timeout=150)
        run.stop(lp)
        _, lines = h.lt_result(lp, timeout=5)
        lt_up = max([v.get("up", 0) for l in lines for v in l.get("peer_totals", {}).values()] or [0])
        run.check("good web seed + libtorrent: completes byte for byte", rc == 0 and h.same_tree(www, dst, [single]),
                  f"exit {rc}\n" + "\n".join(log[-10:]))
        # How much each source sends depends on the machine's load (peers queue ~3 s of
        # requests; web seeds take only pieces nobody started): what must hold is that each
        # delivered at least one whole piece and nothing failed its hash check. The server's
        # log is read only now, after the download ended and its requests with it.
        served = sum(r["bytes"] for r in access(glog))
        with open(t_mix2, "rb") as f:
            plen = bencoding.decode(f.read())[b"info"][b"piece length"]
        run.check("good web seed + libtorrent: both contributed (each sent a whole verified piece or more)",
                  s.get("web_seed_downloaded", 0) >= plen and served >= plen and lt_up >= plen and
                  s.get("downloaded", 0) - s.get("web_seed_downloaded", 0) >= plen and
                  s.get("hash_failures", 1) == 0,
                  f"web seed {s.get('web_seed_downloaded')} (served {served}), libtorrent {lt_up}, {json.dumps(s)}\n" +
                  "\n".join(log[-30:]))
        run.stop(gsrv)
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
