#!/usr/bin/python3
"""`shoal publish` end to end: a folder served by `python3 -m http.server`, its torrents
and RSS 2.0 feed fetched over HTTP and checked with libtorrent.

1. A folder with two files (one with a space in its name), a nested folder and a hidden
   file is published; the feed is valid RSS 2.0 (required channel elements, an enclosure
   per item whose length is the size of the .torrent served at its URL, guid, RFC 822
   dates); each torrent loads in libtorrent with the web seed URL and the files of the
   published entry, and the web seed URL really serves those files' bytes.
2. Running again rehashes nothing and changes nothing in the feed but lastBuildDate; a
   changed file is rehashed alone; a removed entry leaves the feed and OUT.
3. Usage errors exit 2 with a reason.
4. Each torrent is downloaded from its web seed alone (the published site is the only
   source) and compared byte for byte.

    /usr/bin/python3 tests/interop/publish_test.py --shoal build/shoal
"""

import argparse
import email.utils
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import libtorrent as lt

from harness import PY, Run, free_port, main_guard, same_tree, wait_listening, write_random

# Relative path -> size of the published folder's content.
CONTENT = {
    "readme.txt": 3000,
    "big movie.bin": 1536 * 1024 + 7,
    "album/cover.jpg": 16384,
    "album/cd1/01 intro.flac": 70000,
    "album/cd1/02 song.flac": 33333,
    "album/empty.txt": 0,
}
ENTRIES = {"readme.txt": "file", "big movie.bin": "file", "album": "folder"}


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def publish(run, site, base, *extra):
    p = subprocess.run([run.shoal, "publish", site, "--base-url", base, "--json", *extra], capture_output=True,
                       text=True, timeout=300)
    summary = json.loads(p.stdout) if p.returncode == 0 and p.stdout.startswith("{") else None
    return p.returncode, summary, p.stderr


def files_of_entry(site, name):
    """Relative path (as in a torrent: entry name first for folders) -> size."""
    path = os.path.join(site, name)
    if os.path.isfile(path):
        return {name: os.path.getsize(path)}
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            out[os.path.relpath(full, site)] = os.path.getsize(full)
    return out


def check_feed(run, xml_bytes, label):
    """Validates RSS 2.0; returns the channel's items as dicts."""
    root = ET.fromstring(xml_bytes)
    run.check(f"{label}: root is <rss version=\"2.0\">", root.tag == "rss" and root.get("version") == "2.0",
              f"{root.tag} {root.attrib}")
    channels = root.findall("channel")
    if not run.check(f"{label}: one channel", len(channels) == 1, str(len(channels))):
        return []
    ch = channels[0]
    for req in ("title", "link", "description"):
        el = ch.find(req)
        run.check(f"{label}: channel has <{req}>", el is not None and (el.text or "").strip() != "")
    lbd = ch.find("lastBuildDate")
    ok = lbd is not None
    if ok:
        try:
            email.utils.parsedate_to_datetime(lbd.text)
        except (TypeError, ValueError):
            ok = False
    run.check(f"{label}: lastBuildDate is an RFC 822 date", ok, lbd.text if lbd is not None else "missing")
    items = []
    for it in ch.findall("item"):
        d = {}
        title, desc = it.find("title"), it.find("description")
        run.check(f"{label}: item has a title or description", title is not None or desc is not None)
        d["title"] = title.text if title is not None else None
        d["description"] = desc.text if desc is not None else ""
        enc = it.find("enclosure")
        if run.check(f"{label}: item {d['title']} has an enclosure with url, length, type",
                     enc is not None and all(enc.get(k) for k in ("url", "length", "type"))):
            d["url"] = enc.get("url")
            d["length"] = int(enc.get("length"))
            run.check(f"{label}: enclosure type", enc.get("type") == "application/x-bittorrent", enc.get("type"))
        guid = it.find("guid")
        run.check(f"{label}: item {d['title']} has a guid", guid is not None and guid.text)
        d["guid"] = guid.text if guid is not None else None
        if guid is not None:
            run.check(f"{label}: guid isPermaLink=false", guid.get("isPermaLink") == "false")
        pub = it.find("pubDate")
        try:
            d["pubDate"] = email.utils.parsedate_to_datetime(pub.text)
            run.check(f"{label}: item {d['title']} pubDate parses", True)
        except (AttributeError, TypeError, ValueError):
            run.check(f"{label}: item {d['title']} pubDate parses", False, pub.text if pub is not None else "missing")
        link = it.find("link")
        d["link"] = link.text if link is not None else None
        items.append(d)
    return items


def check_torrent(run, site, base, item, torrents_dir):
    """Fetches one enclosure and checks the torrent with libtorrent; returns its path."""
    name = item["title"]
    data = fetch(item["url"])
    run.check(f"{name}: enclosure length is the served .torrent's size", len(data) == item["length"],
              f"{len(data)} vs {item['length']}")
    path = os.path.join(torrents_dir, name + ".torrent")
    with open(path, "wb") as f:
        f.write(data)
    try:
        ti = lt.torrent_info(path)
    except RuntimeError as e:
        run.check(f"{name}: libtorrent loads the torrent", False, str(e))
        return None
    run.check(f"{name}: libtorrent loads the torrent", True)
    ih = ti.info_hashes()
    run.check(f"{name}: hybrid", ih.has_v1() and ih.has_v2())
    run.check(f"{name}: guid is the info-hash", item["guid"] == str(ih.v1), f"{item['guid']} vs {ih.v1}")
    run.check(f"{name}: the description has the magnet link", f"urn:btih:{ih.v1}" in item["description"],
              item["description"])
    folder = ENTRIES[name] == "folder"
    want_seed = base if folder else base + urllib.parse.quote(name, safe="")
    seeds = [w["url"] for w in ti.web_seeds()]
    run.check(f"{name}: web seed", seeds == [want_seed], f"{seeds} vs {want_seed}")
    fs = ti.files()
    got = {fs.file_path(i): fs.file_size(i) for i in range(fs.num_files())
           if not fs.file_flags(i) & lt.file_storage.flag_pad_file}
    run.check(f"{name}: files match the published entry", got == files_of_entry(site, name),
              f"{got} vs {files_of_entry(site, name)}")
    # BEP 19: the web seed URL (plus the path inside the torrent for folders) serves the bytes.
    ok = True
    for rel, size in got.items():
        url = want_seed + "/".join(urllib.parse.quote(c, safe="") for c in rel.split(os.sep)) if folder else want_seed
        body = fetch(url)
        with open(os.path.join(site, rel), "rb") as f:
            ok = ok and body == f.read()
    run.check(f"{name}: the web seed URL serves every file's bytes", ok)
    return path


def without_build_date(xml_bytes):
    return re.sub(rb"<lastBuildDate>[^<]*</lastBuildDate>", b"", xml_bytes)


# --- web seed download ---

def download_from_web_seeds(run, site, torrent, name):
    """Downloads one torrent from its web seed alone and compares every byte."""
    dest = run.path("dl-" + re.sub(r"[^A-Za-z0-9]", "_", name))
    os.makedirs(dest, exist_ok=True)
    log = "download-" + os.path.basename(dest) + ".log"
    with open(run.path(log), "wb") as f:
        try:
            rc = subprocess.run([run.shoal, "download", torrent, "-d", dest, "--local", "--no-dht", "--seed-time", "0",
                                 "--port", str(free_port())], stdout=f, stderr=subprocess.STDOUT,
                                timeout=120).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    names = list(files_of_entry(site, name))
    run.check(f"{name}: downloaded from the web seed alone", rc == 0 and same_tree(site, dest, names),
              f"exit {rc}, see {log}")


def test(args):
    run = Run(args.shoal, "publish")
    try:
        body(run)
    finally:
        rc = run.finish()
    return rc


def body(run):
    site = run.path("site")
    for i, (rel, size) in enumerate(CONTENT.items()):
        write_random(os.path.join(site, rel), size, seed=10 + i)
    with open(os.path.join(site, ".hidden"), "w") as f:
        f.write("not published")
    port = free_port()
    run.spawn([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], "http.log", cwd=site)
    if not run.check("http.server listens", wait_listening(port)):
        return
    base = f"http://127.0.0.1:{port}/"
    torrents_dir = run.path("fetched")
    os.makedirs(torrents_dir)

    # 1. First run.
    rc, s, err = publish(run, site, base)
    run.check("publish exits 0", rc == 0, err)
    if s is None:
        return
    run.check("3 torrents written", s["torrents_written"] == 3 and s["torrents_reused"] == 0, str(s))
    run.check("feed in OUT", s["feed"] == os.path.join(site, ".torrents", "feed.xml"), s["feed"])
    run.check("the hidden file is not published", all(i["name"] != ".hidden" for i in s["items"]))
    feed1 = fetch(base + ".torrents/feed.xml")
    items = check_feed(run, feed1, "feed")
    run.check("one item per entry", sorted(i["title"] for i in items) == sorted(ENTRIES),
              str([i["title"] for i in items]))
    torrents = {}
    for item in items:
        if "url" in item and item["title"] in ENTRIES:
            torrents[item["title"]] = check_torrent(run, site, base, item, torrents_dir)

    # 2. Incremental runs.
    rc, s, err = publish(run, site, base)
    run.check("rerun: nothing rehashed",
              rc == 0 and s["torrents_written"] == 0 and s["torrents_reused"] == 3
              and not any(i["rehashed"] for i in s["items"]), str(s) + err)
    feed2 = fetch(base + ".torrents/feed.xml")
    run.check("rerun: feed unchanged but lastBuildDate", without_build_date(feed1) == without_build_date(feed2))
    time.sleep(1.1)
    with open(os.path.join(site, "album", "cd1", "02 song.flac"), "ab") as f:
        f.write(b"changed")
    rc, s, err = publish(run, site, base)
    rehashed = sorted(i["name"] for i in s["items"] if i["rehashed"]) if s else None
    run.check("a changed file inside a folder rehashes that entry alone",
              rc == 0 and s["torrents_written"] == 1 and s["torrents_reused"] == 2 and rehashed == ["album"],
              str(s) + err)
    os.remove(os.path.join(site, "big movie.bin"))
    rc, s, err = publish(run, site, base)
    run.check("a removed entry leaves", rc == 0 and s["torrents_removed"] == 1 and s["torrents_written"] == 0
              and sorted(i["name"] for i in s["items"]) == ["album", "readme.txt"], str(s) + err)
    items3 = check_feed(run, fetch(base + ".torrents/feed.xml"), "feed after removal")
    run.check("the feed lists what is left", sorted(i["title"] for i in items3) == ["album", "readme.txt"])
    run.check("the removed entry's torrent is deleted",
              not os.path.exists(os.path.join(site, ".torrents", "big movie.bin.torrent")))
    # Torrents outside DIR with --torrent-url; a feed path of our own.
    out = run.path("elsewhere")
    rc, s, err = publish(run, site, base, "--out", out, "--torrent-url", "http://cdn.example/t/",
                         "--feed", run.path("my feed.xml"), "--title", "A & B <c>")
    ok = rc == 0 and s is not None and s["torrents_written"] == 2
    if ok:
        feed = open(run.path("my feed.xml"), "rb").read()
        ok = b"http://cdn.example/t/readme.txt.torrent" in feed and b"<title>A &amp; B &lt;c&gt;</title>" in feed
    run.check("--out outside DIR with --torrent-url, --feed, --title (escaped)", ok, err)

    # 3. Usage errors.
    for label, argv in (
        ("no --base-url", [run.shoal, "publish", site]),
        ("--base-url not http", [run.shoal, "publish", site, "--base-url", "ftp://x/"]),
        ("DIR missing", [run.shoal, "publish", run.path("nope"), "--base-url", base]),
        ("--out outside DIR without --torrent-url",
         [run.shoal, "publish", site, "--base-url", base, "--out", run.path("other")]),
    ):
        p = subprocess.run(argv, capture_output=True, text=True)
        run.check(f"usage error: {label} exits 2 with a reason",
                  p.returncode == 2 and p.stderr.startswith("shoal: error:"), f"{p.returncode} {p.stderr!r}")

    # 4. Web seed downloads: every published torrent downloads from its web seed alone.
    for name in ("readme.txt", "album"):
        path = os.path.join(site, ".torrents", name + ".torrent")
        if run.check(f"{name}: published as a torrent", bool(torrents.get(name)) and os.path.exists(path), path):
            download_from_web_seeds(run, site, path, name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    return test(ap.parse_args())


if __name__ == "__main__":
    main_guard(lambda: main())
