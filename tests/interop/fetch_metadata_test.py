#!/usr/bin/python3
"""Magnets to torrents and back: `shoal fetch-metadata`, xs= (exact source) links, and the
magnet links of a `shoal publish` feed.

1. `shoal fetch-metadata MAGNET --peer` from a `shoal seed` of a hybrid torrent: exit 0,
   and the .torrent written has the original's info dictionary byte for byte, the link's
   trackers as announce-list (a tier each) and its ws= as url-list. An existing output is
   refused without -f; a peer that never answers ends in exit 1 at --timeout.
2. A link with xs= (the .torrent's URL) and no other source: the metadata comes from the
   URL; an xs= serving another torrent is refused (exit 1, "does not hash").
3. `shoal publish` writes xs= and ws= in its feed's magnet links; `shoal download` of such a
   link, with no peer, tracker or DHT, downloads the item from the web seed alone; the
   feed's sizes are the files' (a hybrid torrent's pad files are not counted).

    /usr/bin/python3 tests/interop/fetch_metadata_test.py --shoal build/shoal
"""

import argparse
import hashlib
import html
import os
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import bencoding
from harness import PY, Run, free_port, main_guard, same_tree, shoal_create, wait_listening, write_random

FILES = {"a.bin": 100000, "b.bin": 70001, "sub/c.bin": 40000}


def span_end(d, i):
    """End offset of the bencoded value starting at d[i]."""
    c = d[i:i + 1]
    if c == b"i":
        return d.index(b"e", i) + 1
    if c in (b"l", b"d"):
        i += 1
        while d[i:i + 1] != b"e":
            i = span_end(d, i)
        return i + 1
    colon = d.index(b":", i)
    return colon + 1 + int(d[i:colon])


def info_span(torrent_bytes):
    """The info dictionary exactly as the file holds it."""
    d = torrent_bytes
    i = 1
    while d[i:i + 1] != b"e":
        k_end = span_end(d, i)
        key = d[d.index(b":", i) + 1:k_end]
        v_end = span_end(d, k_end)
        if key == b"info":
            return d[k_end:v_end]
        i = v_end
    return None


def magnet_of(info, name, extra=()):
    q = [("xt", "urn:btih:" + hashlib.sha1(info).hexdigest())]
    if b"meta versioni2e" in info:
        q.append(("xt", "urn:btmh:1220" + hashlib.sha256(info).hexdigest()))
    q.append(("dn", name))
    q += list(extra)
    return "magnet:?" + "&".join(k + "=" + urllib.parse.quote(v, safe=":") for k, v in q)


def fetch_metadata(run, magnet, out, *extra, timeout=120):
    t0 = time.monotonic()
    p = subprocess.run([run.shoal, "fetch-metadata", magnet, "-o", out, "--local", "--no-dht", *extra],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = Run(args.shoal, "fetch-metadata")
    src = run.path("data", "album")
    for i, (rel, size) in enumerate(FILES.items()):
        write_random(os.path.join(src, rel), size, seed=40 + i)
    orig = run.path("served", "album.torrent")
    os.makedirs(run.path("served"), exist_ok=True)
    shoal_create(run, src, orig, "--hybrid", "-a", "http://127.0.0.1:9/announce")
    orig_bytes = open(orig, "rb").read()
    info = info_span(orig_bytes)
    trackers = ["http://127.0.0.1:9/announce", "udp://127.0.0.1:9"]
    seeds = ["http://127.0.0.1:9/album/"]

    # --- 1. from a seeder over --peer ---
    sport = free_port()
    run.spawn([run.shoal, "seed", orig, "-d", run.path("data"), "--port", str(sport), "--local", "--no-dht",
               "--no-lsd"], "seed.log")
    wait_listening(sport)
    link = magnet_of(info, "album", [("tr", t) for t in trackers] + [("ws", w) for w in seeds])
    out = run.path("out", "album.torrent")
    rc, text, _ = fetch_metadata(run, link, out, "--peer", f"127.0.0.1:{sport}")
    got = open(out, "rb").read() if os.path.exists(out) else b""
    run.check("fetch-metadata from a seeder over --peer exits 0", rc == 0, text)
    run.check("the info dictionary written is the original, byte for byte", got and info_span(got) == info,
              f"{len(got)} bytes")
    meta = bencoding.decode(got) if got else {}
    run.check("the link's trackers are the announce-list (a tier each), its ws= the url-list",
              meta.get(b"announce") == trackers[0].encode() and
              meta.get(b"announce-list") == [[t.encode()] for t in trackers] and
              meta.get(b"url-list") == [w.encode() for w in seeds], repr({k: v for k, v in meta.items()
                                                                            if k != b"info"}))
    p = subprocess.run([PY, "-c", "import libtorrent as lt, sys; t = lt.torrent_info(sys.argv[1]); print(t.name())",
                        out], capture_output=True, text=True, timeout=60)
    run.check("libtorrent loads the .torrent written", p.returncode == 0 and p.stdout.strip() == "album",
              p.stdout + p.stderr)
    rc, text, _ = fetch_metadata(run, link, out, "--peer", f"127.0.0.1:{sport}")
    run.check("an existing output is refused without -f (exit 1)", rc == 1 and "-f" in text, text)

    # A peer that accepts and never says a word: exit 1 once --timeout has passed.
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    mute_port = mute.getsockname()[1]
    rc, text, took = fetch_metadata(run, link, run.path("out", "never.torrent"), "--peer",
                                    f"127.0.0.1:{mute_port}", "--timeout", "3")
    run.check("no metadata within --timeout 3: exit 1 after about 3 s", rc == 1 and 2.5 <= took < 20 and
              not os.path.exists(run.path("out", "never.torrent")), f"exit {rc} after {took:.1f} s: {text}")
    mute.close()

    # --- 2. xs= ---
    hport = free_port()
    run.spawn([PY, "-m", "http.server", "--bind", "127.0.0.1", str(hport)], "http-served.log", cwd=run.path("served"))
    wait_listening(hport)
    other = run.path("served", "other.torrent")
    write_random(run.path("data", "other.bin"), 5000, seed=99)
    shoal_create(run, run.path("data", "other.bin"), other)
    xs_link = magnet_of(info, "album", [("xs", f"http://127.0.0.1:{hport}/album.torrent")])
    out2 = run.path("out", "from-xs.torrent")
    rc, text, took = fetch_metadata(run, xs_link, out2, "--timeout", "30")
    got2 = open(out2, "rb").read() if os.path.exists(out2) else b""
    run.check("an xs= link with no other source: the metadata comes from the URL",
              rc == 0 and info_span(got2) == info, f"exit {rc} after {took:.1f} s: {text}")
    bad_link = magnet_of(info, "album", [("xs", f"http://127.0.0.1:{hport}/other.torrent")])
    rc, text, _ = fetch_metadata(run, bad_link, run.path("out", "bad.torrent"), "--timeout", "30")
    run.check("an xs= serving another torrent is refused (exit 1)", rc == 1 and "does not hash" in text and
              not os.path.exists(run.path("out", "bad.torrent")), text)

    # --- 3. publish: xs= and ws= in the feed, a magnet downloaded from the web seed alone ---
    site = run.path("site")
    for i, (rel, size) in enumerate(FILES.items()):
        write_random(os.path.join(site, "album", rel), size, seed=40 + i)
    write_random(os.path.join(site, "single.bin"), 300000, seed=77)
    wport = free_port()
    run.spawn([PY, "-m", "http.server", "--bind", "127.0.0.1", str(wport)], "http-site.log", cwd=site)
    wait_listening(wport)
    base = f"http://127.0.0.1:{wport}/"
    p = subprocess.run([run.shoal, "publish", site, "--base-url", base], capture_output=True, text=True, timeout=120)
    run.check("publish exits 0", p.returncode == 0, p.stderr)
    feed = open(os.path.join(site, ".torrents", "feed.xml"), encoding="utf-8").read()
    for name, files in (("album", {k: v for k, v in FILES.items()}), ("single.bin", {"": 300000})):
        item = next((x for x in feed.split("<item>")[1:] if f"<title>{name}</title>" in x), "")
        m = re.search(r"Magnet link: (magnet:\?[^<\s]+)", item)
        magnet = html.unescape(m.group(1)) if m else ""
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(magnet).query)
        want_xs = base + ".torrents/" + urllib.parse.quote(name + ".torrent")
        want_ws = base + urllib.parse.quote(name) if name == "single.bin" else base
        run.check(f"{name}: the feed's magnet link has xs= (its .torrent) and ws= (its web seed)",
                  q.get("xs") == [want_xs] and q.get("ws") == [want_ws], magnet)
        total = sum(files.values())
        sizes = [int(x) for x in re.findall(r"<torrent:contentLength>(\d+)<", item)]
        run.check(f"{name}: the feed's sizes count the files only (no pad files)",
                  all(s == total for s in sizes) and f"in {len(files)} file" in item, item)
        dest = run.path("dl-" + name)
        with open(run.path(f"dl-{name}.log"), "wb") as f:
            try:
                rc = subprocess.run([run.shoal, "download", magnet, "-d", dest, "--local", "--no-dht", "--no-lsd",
                                     "--seed-time", "0", "--port", str(free_port())], stdout=f,
                                    stderr=subprocess.STDOUT, timeout=120).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        names = [os.path.join(name, k) for k in files] if name == "album" else [name]
        run.check(f"{name}: the magnet link downloads from the web seed alone (no peers)",
                  rc == 0 and same_tree(site, dest, names),
                  f"exit {rc}: " + open(run.path(f"dl-{name}.log"), "rb").read()[-1500:].decode("utf-8", "replace"))
    return run.finish()


if __name__ == "__main__":
    main_guard(main)
