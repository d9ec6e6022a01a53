#!/usr/bin/python3
"""shoal daemon following an RSS feed written by `shoal publish` of a folder served over
HTTP on loopback: the items whose titles pass the include/exclude filter are added (their
.torrent fetched from the feed's enclosures) with the feed's labels and folder, and
download from the web seed; the others are not; an item taken once is not taken again,
even after it is removed and the daemon restarts; an Atom feed of magnet links works too.
Then a second published feed followed through qBittorrent's Web API alone (rss/addFeed and
an rss/setRule rule): the items the rule matches are added with its label and folder and
download, the others are not; rss/items and rss/rules answer as a real qbittorrent-nox 4.5
does for the same feed and rule (the same field names and JSON types), and both survive a
restart.

Usage: daemon_feed_test.py --shoal PATH
"""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import threading
import traceback

import harness as h
from daemon_test import Rpc, shape_diff, start_daemon, wait_for
from qbittorrent_api_test import Qb, start_qbittorrent


def serve(folder):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=folder, **kw)

        def log_message(self, *a):
            pass
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    return web, f"http://127.0.0.1:{web.server_address[1]}/"


def rss_over_api(run, d, state, dl, rpc_port, peer_port, settings_feeds):
    """A feed and a rule added over rss/*, their items taken; shapes next to qbittorrent-nox."""
    served = run.path("served2")
    for i, name in enumerate(["Anime.E01.mkv", "Anime.E02.mkv", "Anime.E02.SAMPLE.mkv", "Documentary.mkv"]):
        h.write_random(os.path.join(served, name), 200000 + i * 1000, seed=80 + i)
    web, base = serve(served)
    r = subprocess.run([run.shoal, "publish", served, "--base-url", base, "--v1", "--json"], capture_output=True,
                       text=True)
    run.check("shoal publish wrote the second feed", r.returncode == 0, r.stderr[-400:])
    feed = base + ".torrents/feed.xml"
    api_dir = os.path.join(dl, "api")
    rule = {"enabled": True, "mustContain": "anime e0?", "mustNotContain": "sample", "useRegex": False,
            "affectedFeeds": [feed], "assignedCategory": "anime", "savePath": api_dir, "addPaused": False}
    sh = Qb(rpc_port)
    code, text = sh.req("rss/addFeed", data={"url": feed, "path": "Published"})
    run.check("rss/addFeed", code == 200, f"{code} {text}")
    code, text = sh.req("rss/addFeed", data={"url": feed, "path": "Twice"})
    run.check("rss/addFeed of a URL followed already: 409", code == 409, f"{code} {text}")
    code, text = sh.req("rss/addFeed", data={"url": f"http://127.0.0.1:{rpc_port}/api/v2/app/shutdown", "path": "Self"})
    run.check("rss/addFeed of a URL at the daemon itself: 409", code == 409 and "own RPC port" in text, f"{code} {text}")
    code, text = sh.post("rss/setRule", ruleName="Anime", ruleDef=json.dumps(rule))
    run.check("rss/setRule", code == 200, f"{code} {text}")
    rpc = Rpc(rpc_port)
    fields = ["name", "labels", "downloadDir", "percentDone"]
    wait_for(lambda: (lambda ts: len(ts) >= 2 and all(t["percentDone"] == 1 for t in ts) or None)(
        [t for t in rpc.torrents(fields) if "anime" in t["labels"]]), 60)
    taken = [t for t in rpc.torrents(fields) if "anime" in t["labels"]]
    names = sorted(t["name"] for t in taken)
    run.check("the rule took E01 and E02 of the API's feed (not the SAMPLE, not the documentary)",
              names == ["Anime.E01.mkv", "Anime.E02.mkv"], str(rpc.torrents(fields)))
    run.check("... into the rule's folder with its label, downloaded from the web seed, bytes identical",
              all(t["downloadDir"] == api_dir for t in taken) and
              h.same_tree(served, api_dir, ["Anime.E01.mkv", "Anime.E02.mkv"]), str(taken))
    run.check("... and nothing else of that feed", not any("Documentary" in t["name"] or "SAMPLE" in t["name"]
                                                           for t in rpc.torrents(["name"])), str(rpc.torrents(["name"])))
    ours_items = sh.get("rss/items?withData=true") or {}
    ours_rules = sh.get("rss/rules") or {}
    pub = ours_items.get("Published", {})
    run.check("rss/items?withData=true: the feed with its 4 articles, its title, no error",
              len(pub.get("articles", [])) == 4 and pub.get("hasError") is False and pub.get("title"), json.dumps(pub)[:600])
    read = sorted(a["title"] for a in pub.get("articles", []) if a.get("isRead") is True)
    run.check("rss/items: the articles the rule took are read (isRead), the others name no isRead",
              read == ["Anime.E01.mkv", "Anime.E02.mkv"], json.dumps(pub)[:600])
    run.check("rss/items: an article has the feed's torrent:contentLength (its bytes) and torrent:infoHash",
              all(a.get("contentLength", "").isdigit() and len(a.get("infoHash", "")) == 40
                  for a in pub.get("articles", [])), json.dumps(pub)[:600])
    # markAsRead: an article read is not taken by a rule set afterwards; the poll that takes
    # the other article the rule matches (the sample) shows the rule was applied.
    doc = next((a for a in pub.get("articles", []) if a["title"] == "Documentary.mkv"), None)
    code, text = sh.req("rss/markAsRead", data={"itemPath": "Published", "articleId": doc["id"] if doc else ""})
    run.check("rss/markAsRead", code == 200, f"{code} {text}")
    code, text = sh.req("rss/setRule", data={"ruleName": "Docs", "ruleDef": json.dumps(
        {"enabled": True, "mustContain": "documentary|sample", "affectedFeeds": [feed]})})
    run.check("rss/setRule of a rule matching the read article and the sample", code == 200, f"{code} {text}")
    took = wait_for(lambda: [t["name"] for t in rpc.torrents(["name"]) if "SAMPLE" in t["name"]], 30)
    run.check("... the rule took the sample but not the article marked read",
              took and not any("Documentary" in t["name"] for t in rpc.torrents(["name"])), str(rpc.torrents(["name"])))
    sh.req("rss/removeRule", data={"ruleName": "Docs"})
    run.check("rss/rules: the rule as set, with a lastMatch", ours_rules.get("Anime", {}).get("mustContain") == "anime e0?"
              and ours_rules["Anime"].get("lastMatch"), json.dumps(ours_rules))
    matching = sh.get("rss/matchingArticles?ruleName=Anime") or {}
    run.check("rss/matchingArticles: the two titles", sorted(matching.get("Published", [])) ==
              ["Anime.E01.mkv", "Anime.E02.mkv"], str(matching))

    # The same feed and rule in a real qbittorrent-nox 4.5 (auto-downloading off).
    if shutil.which("qbittorrent-nox"):
        qb_dl = run.path("qb-dl")
        os.makedirs(qb_dl)
        _, qb = start_qbittorrent(run, qb_dl)
        qb.post("auth/login", username="admin", password="x")
        qb.post("app/setPreferences", json=json.dumps({"rss_processing_enabled": True,
                                                       "rss_auto_downloading_enabled": False}))
        qb.req("rss/addFeed", data={"url": feed, "path": "Published"})
        qb.post("rss/setRule", ruleName="Anime", ruleDef=json.dumps(dict(rule, savePath=qb_dl)))
        theirs = wait_for(lambda: (lambda i: i if i and i.get("Published", {}).get("articles") else None)(
            qb.get("rss/items?withData=true")), 30) or {}
        run.check("qbittorrent-nox read the same feed", bool(theirs), str(qb.get("rss/items?withData=true")))
        if theirs:
            ours_feed, their_feed = ours_items["Published"], theirs["Published"]
            run.check("rss/items: the same item names (and settings.json's feeds, named by their URL)",
                      set(ours_items) == set(theirs) | set(settings_feeds), f"{set(ours_items)} vs {set(theirs)}")
            run.check("rss/items?withData=true: a feed has qBittorrent's field names and types (and no others, "
                      "but the error it names when it has one)",
                      not shape_diff(ours_feed, their_feed) and not shape_diff(their_feed, ours_feed),
                      f"{shape_diff(ours_feed, their_feed)} / extra: {shape_diff(their_feed, ours_feed)}")
            run.check("... the same title, last build date and articles (ids, titles, links)",
                      [ours_feed[k] for k in ("title", "lastBuildDate")] == [their_feed[k] for k in ("title", "lastBuildDate")]
                      and sorted((a["id"], a["title"], a["torrentURL"]) for a in ours_feed["articles"]) ==
                      sorted((a["id"], a["title"], a["torrentURL"]) for a in their_feed["articles"]),
                      f"{json.dumps(ours_feed)[:300]} vs {json.dumps(their_feed)[:300]}")
            # An article the rule did not take: one it took is read in ours (isRead, as
            # qBittorrent marks what its auto-downloader takes), and auto-downloading is off there.
            oa = next((a for a in ours_feed["articles"] if not a.get("isRead")), ours_feed["articles"][0])
            ta = next((a for a in their_feed["articles"] if a["id"] == oa["id"]), their_feed["articles"][0])
            run.check("... an article has qBittorrent's field names and types",
                      not shape_diff(oa, ta) and not shape_diff(ta, oa), f"{shape_diff(oa, ta)} / {shape_diff(ta, oa)}")
            plain = sh.get("rss/items") or {}
            their_plain = qb.get("rss/items") or {}
            run.check("rss/items without data: the same shape", their_plain and all(
                not shape_diff(plain.get(k, {}), v) and not shape_diff(v, plain.get(k, {})) for k, v in their_plain.items()),
                f"{plain} vs {their_plain}")
            their_rules = qb.get("rss/rules") or {}
            ours_rule, their_rule = ours_rules.get("Anime", {}), their_rules.get("Anime", {})
            run.check("rss/rules: a rule has qBittorrent's field names and types",
                      their_rule and not shape_diff(ours_rule, their_rule) and not shape_diff(their_rule, ours_rule),
                      f"{shape_diff(ours_rule, their_rule)} / extra: {shape_diff(their_rule, ours_rule)}")
            run.check("... the same values where they must agree",
                      all(ours_rule.get(k) == their_rule.get(k) for k in
                          ("enabled", "mustContain", "mustNotContain", "useRegex", "affectedFeeds", "assignedCategory",
                           "addPaused")), f"{ours_rule} vs {their_rule}")
            their_matching = qb.get("rss/matchingArticles?ruleName=Anime")
            run.check("rss/matchingArticles: the same titles as qBittorrent matches with the same rule",
                      {k: sorted(v) for k, v in (their_matching or {}).items()} ==
                      {k: sorted(v) for k, v in matching.items()}, f"{matching} vs {their_matching}")
    else:
        run.check("qbittorrent-nox is installed (scripts/install-deps)", False)

    # A restart: the feed and the rule are back, and nothing is taken twice.
    run.stop(d)
    d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon3.log")
    sh = Qb(rpc_port)
    import time
    time.sleep(3)
    items, rules = sh.get("rss/items") or {}, sh.get("rss/rules") or {}
    run.check("after a restart rss/items and rss/rules still have the feed and the rule",
              items.get("Published", {}).get("url") == feed and "Anime" in rules, f"{items} {rules}")
    anime = sorted(t["name"] for t in Rpc(rpc_port).torrents(["name", "labels"]) if "anime" in t["labels"])
    run.check("... and nothing was taken twice", anime == ["Anime.E01.mkv", "Anime.E02.mkv"], str(anime))
    code, text = sh.req("rss/removeItem", data={"path": settings_feeds[0]})
    run.check("rss/removeItem of a feed of settings.json: 409, named as such", code == 409 and "settings.json" in text,
              f"{code} {text}")
    code, _ = sh.post("rss/removeRule", ruleName="Anime")
    code2, _ = sh.req("rss/removeItem", data={"path": "Published"})
    run.check("rss/removeRule and rss/removeItem: only settings.json's feeds are left",
              code == code2 == 200 and sorted(sh.get("rss/items") or {}) == sorted(settings_feeds) and
              sh.get("rss/rules") == {}, f"{code} {code2} {sh.get('rss/items')} {sh.get('rss/rules')}")
    web.shutdown()
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "daemon-feed")
    try:
        served = run.path("served")
        for i, name in enumerate(["Show.S01E01.mkv", "Show.S01E02.mkv", "Show.S01E03.SAMPLE.mkv", "Other.Movie.mkv"]):
            h.write_random(os.path.join(served, name), 300000 + i * 1000, seed=60 + i)

        web, base = serve(served)
        r = subprocess.run([run.shoal, "publish", served, "--base-url", base, "--v1", "--json"], capture_output=True,
                           text=True)
        run.check("shoal publish wrote the feed", r.returncode == 0, r.stderr[-400:])
        feed_url = base + ".torrents/feed.xml"
        # An Atom feed with a magnet link (for a torrent nobody seeds: added, not downloaded).
        atom = os.path.join(served, "atom.xml")
        with open(atom, "w") as f:
            f.write('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
                    '<entry><title>Show.S02E01 &amp; more</title><id>urn:x:1</id>'
                    '<link rel="enclosure" href="magnet:?xt=urn:btih:' + "ab" * 20 + '&amp;dn=s2e1"/></entry>'
                    '</feed>')
        state, dl, tv = run.path("state"), run.path("dl"), run.path("dl", "tv")
        os.makedirs(state)
        with open(os.path.join(state, "settings.json"), "w") as f:
            json.dump({"feeds": [
                {"url": feed_url, "include": r"^show\.s01", "exclude": "sample", "labels": ["tv"],
                 "download-dir": tv, "interval": 10},
                {"url": base + "atom.xml", "include": "S02", "labels": ["atom"], "interval": 10},
            ]}, f)
        rpc_port, peer_port = h.free_port(), h.free_port()
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon.log")
        rpc = Rpc(rpc_port)
        fields = ["id", "name", "labels", "downloadDir", "percentDone", "hashString"]
        got = wait_for(lambda: (lambda ts: ts if len(ts) >= 3 and all(
            t["percentDone"] == 1 for t in ts if "tv" in t["labels"]) else None)(rpc.torrents(fields)), 60)
        ts = rpc.torrents(fields)
        names = sorted(t["name"] for t in ts)
        run.check("the filter took E01 and E02 (not the SAMPLE, not the other show) and the Atom magnet",
                  names == ["Show.S01E01.mkv", "Show.S01E02.mkv", "s2e1"], str(names))
        tv_ones = [t for t in ts if "tv" in t["labels"]]
        run.check("... with the feed's labels and folder", len(tv_ones) == 2 and all(t["downloadDir"] == tv for t in tv_ones)
                  and any(t["labels"] == ["atom"] for t in ts), str(ts))
        run.check("... and downloaded from the web seed, bytes identical",
                  bool(got) and h.same_tree(served, tv, ["Show.S01E01.mkv", "Show.S01E02.mkv"]), str(ts))
        # Removed, then a restart and two polls: not taken again.
        e01 = [t["id"] for t in ts if t["name"] == "Show.S01E01.mkv"]
        rpc.call("torrent-remove", ids=e01)
        run.stop(d)
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon2.log")
        rpc = Rpc(rpc_port)
        import time
        time.sleep(22)
        names = sorted(t["name"] for t in rpc.torrents(["name"]))
        run.check("an item taken once is not taken again after a removal and a restart",
                  names == ["Show.S01E02.mkv", "s2e1"], str(names))
        seen = json.load(open(os.path.join(state, "feeds.json")))
        run.check("the ids taken are remembered in STATE/feeds.json",
                  len(seen.get(feed_url, [])) == 2 and seen.get(base + "atom.xml") == ["urn:x:1"], str(seen))
        try:
            d = rss_over_api(run, d, state, dl, rpc_port, peer_port, [feed_url, base + "atom.xml"])
        except Exception:
            run.check("the rss/* steps ran to their end", False, traceback.format_exc()[-1200:])
        web.shutdown()
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
