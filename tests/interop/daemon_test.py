#!/usr/bin/python3
"""shoal daemon driven by the real transmission-remote 3.00, with libtorrent seeders behind
opentracker on loopback: add a .torrent, a magnet and a URL; list and info (-l, -i, -if,
-ip, -it); stop, start, verify; limits; files wanted; move; restart after kill -9 with
nothing downloaded again; remove with data. The security rules are checked first (foreign
Host, missing session id, cross-site POST, paths outside the allowed folders, file:// and
URLs at the daemon itself): each is refused and none changes state. Then the answers'
shapes (field names and JSON types) are compared with a transmission-daemon 3.00 given the
same torrent in the same run.

Usage: daemon_test.py --shoal PATH
"""
import argparse
import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import bencoding
import harness as h


class Rpc:
    """A Transmission RPC client: session-id handshake, JSON in and out."""

    def __init__(self, port, host_header=None):
        self.url = f"http://127.0.0.1:{port}/transmission/rpc"
        self.sid = ""
        self.host_header = host_header

    def raw(self, body, headers=None):
        req = urllib.request.Request(self.url, data=body.encode(), method="POST")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def call(self, method, **args):
        body = json.dumps({"method": method, "arguments": args})
        for _ in range(2):
            hdrs = {"X-Transmission-Session-Id": self.sid, "Content-Type": "application/json"}
            if self.host_header:
                hdrs["Host"] = self.host_header
            code, headers, text = self.raw(body, hdrs)
            if code == 409:
                self.sid = headers.get("X-Transmission-Session-Id", "")
                continue
            if code != 200:
                return {"result": f"HTTP {code}", "arguments": {}}
            return json.loads(text)
        return {"result": "no session id", "arguments": {}}

    def torrents(self, fields, ids=None):
        args = {"fields": fields}
        if ids is not None:
            args["ids"] = ids
        r = self.call("torrent-get", **args)
        return r.get("arguments", {}).get("torrents", [])


def remote(port, *args, timeout=60):
    r = subprocess.run(["transmission-remote", f"127.0.0.1:{port}", *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout + r.stderr


wait_for = h.wait_for  # other daemon tests import it from here


def read_resume(state, info_hash):
    """A torrent's resume file in the daemon's state folder, decoded; None while there is none."""
    try:
        return bencoding.decode(open(os.path.join(state, "resume", info_hash + ".resume"), "rb").read())
    except (OSError, ValueError):
        return None


def type_name(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def shape_diff(ours, theirs):
    """Keys of Transmission's answer that ours lacks or gives another JSON type."""
    bad = []
    for k, v in theirs.items():
        if k not in ours:
            bad.append(f"{k}: missing")
        elif type_name(ours[k]) != type_name(v):
            bad.append(f"{k}: {type_name(ours[k])}, Transmission {type_name(v)}")
    return bad


def start_daemon(run, state, dl, rpc_port, peer_port, log, *extra):
    p = run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(rpc_port),
                   "--port", str(peer_port), "--local", "--no-dht", "--no-lsd", *extra], log)
    h.wait_listening(rpc_port)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "daemon")
    try:
        src = run.path("src")
        pack = os.path.join(src, "pack")
        h.write_random(os.path.join(pack, "a.bin"), 2 << 20, seed=1)
        h.write_random(os.path.join(pack, "b.bin"), 600000, seed=2)
        h.write_random(os.path.join(pack, "sub", "c.bin"), 300000, seed=3)
        h.write_random(os.path.join(src, "mag.bin"), 1 << 20, seed=4)
        h.write_random(os.path.join(src, "url.bin"), 700000, seed=5)
        tracker = None
        names = {"pack": pack, "mag": os.path.join(src, "mag.bin"), "url": os.path.join(src, "url.bin")}
        infos = {}
        for n, path in names.items():
            infos[n] = h.shoal_create(run, path, run.path(f"{n}.torrent"), "--v1", "--piece-size", "64KiB")
        tracker = h.start_opentracker(run, [i["info_hash_v1"] for i in infos.values()])
        announce = f"http://127.0.0.1:{tracker}/announce"
        for n, path in names.items():
            infos[n] = h.shoal_create(run, path, run.path(f"{n}.torrent"), "--v1", "--piece-size", "64KiB",
                                      "-t", announce)
        for n in names:
            h.lt_peer(run, "seed", run.path(f"{n}.torrent"), src, h.free_port(), f"lt-{n}.log", seconds=600)

        # A web server for the URL add.
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=run.dir, **kw)

            def log_message(self, *a):
                pass
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        web_port = web.server_address[1]

        state, dl, dl2 = run.path("state"), run.path("dl"), run.path("dl2")
        rpc_port, peer_port = h.free_port(), h.free_port()
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon.log", "--allowed-dir", dl2)
        rpc = Rpc(rpc_port)

        # --- security: each refused, nothing changes ------------------------------------------
        code, hdrs, _ = Rpc(rpc_port).raw(json.dumps({"method": "session-get"}))
        run.check("no session id: 409 with the id in X-Transmission-Session-Id",
                  code == 409 and len(hdrs.get("X-Transmission-Session-Id", "")) >= 32, f"{code} {hdrs}")
        sid = hdrs.get("X-Transmission-Session-Id", "")
        code, _, body = Rpc(rpc_port).raw(json.dumps({"method": "torrent-add", "arguments": {
            "metainfo": base64.b64encode(open(run.path("pack.torrent"), "rb").read()).decode()}}),
            {"X-Transmission-Session-Id": sid, "Host": "evil.example:9091"})
        run.check("a foreign Host header (DNS rebinding): 421", code == 421, f"{code} {body[:200]}")
        code, _, body = Rpc(rpc_port).raw(json.dumps({"method": "torrent-add", "arguments": {
            "filename": f"magnet:?xt=urn:btih:{infos['mag']['info_hash_v1']}"}}),
            {"Origin": "http://evil.example", "Content-Type": "text/plain"})
        run.check("a cross-site POST (no session id header): 409, not run", code == 409, f"{code} {body[:200]}")
        r = rpc.call("torrent-add", filename=run.path("pack.torrent"), **{"download-dir": "/etc"})
        run.check("torrent-add into a folder outside the allowed ones: refused",
                  "outside the allowed" in r["result"], str(r))
        r = rpc.call("torrent-add", filename="file:///etc/passwd")
        run.check("torrent-add of a file:// URL: refused", "only http(s)" in r["result"], str(r))
        r = rpc.call("torrent-add", filename=f"http://127.0.0.1:{rpc_port}/transmission/rpc")
        run.check("torrent-add of a URL at the daemon itself: refused", "own RPC port" in r["result"], str(r))
        r = rpc.call("torrent-add", metainfo="!!!notbase64")
        run.check("torrent-add of metainfo that is not base64: refused", r["result"] != "success", str(r))
        r = rpc.call("no-such-method")
        run.check("an unknown method: 'method name not recognized'", r["result"] == "method name not recognized", str(r))
        run.check("none of the refused requests added a torrent", rpc.torrents(["id"]) == [], str(rpc.torrents(["id"])))

        # --- transmission-remote: add a .torrent file, a magnet and a URL --------------------
        rc, out = remote(rpc_port, "-a", run.path("pack.torrent"))
        run.check("transmission-remote -a FILE.torrent", rc == 0 and "success" in out, out)
        mag_link = f"magnet:?xt=urn:btih:{infos['mag']['info_hash_v1']}&dn=mag.bin&tr={announce}"
        rc, out = remote(rpc_port, "-a", mag_link)
        run.check("transmission-remote -a MAGNET", rc == 0 and "success" in out, out)
        rc, out = remote(rpc_port, "-a", f"http://127.0.0.1:{web_port}/url.torrent")
        run.check("transmission-remote -a URL", rc == 0 and "success" in out, out)

        def done_all():
            ts = rpc.torrents(["id", "percentDone", "status", "name"])
            return len(ts) == 3 and all(t["percentDone"] == 1 and t["status"] == 6 for t in ts)
        ok = wait_for(done_all, 120)
        run.check("all three downloads complete and seed (status 6)", ok,
                  str(rpc.torrents(["id", "name", "percentDone", "status", "errorString", "peersConnected"])))
        run.check("the .torrent download: bytes identical",
                  h.same_tree(src, dl, ["pack/a.bin", "pack/b.bin", "pack/sub/c.bin"]))
        run.check("the magnet download: bytes identical", h.same_tree(src, dl, ["mag.bin"]))
        run.check("the URL download: bytes identical", h.same_tree(src, dl, ["url.bin"]))

        ids = {t["name"]: t["id"] for t in rpc.torrents(["id", "name"])}
        run.check("torrent ids are 1, 2, 3 in the order added",
                  [ids.get("pack"), ids.get("mag.bin"), ids.get("url.bin")] == [1, 2, 3], str(ids))
        rc, out = remote(rpc_port, "-l")
        run.check("transmission-remote -l lists the three at 100%",
                  rc == 0 and out.count("100%") == 3 and "pack" in out and "mag.bin" in out, out)
        rc, out = remote(rpc_port, "-t", "1", "-i")
        run.check("transmission-remote -i shows the hash, name and size",
                  rc == 0 and f"Hash: {infos['pack']['info_hash_v1']}" in out and "Name: pack" in out
                  and "Percent Done: 100%" in out, out[:800])
        rc, out = remote(rpc_port, "-t", "1", "-if")
        run.check("transmission-remote -if lists the three files",
                  rc == 0 and "pack/a.bin" in out and "pack/b.bin" in out and "pack/sub/c.bin" in out
                  and "(3 files)" in out, out)
        # The table must hold exactly the peers the RPC reports (both seeds, so often none are
        # left: then the header alone), each by its address.
        # A peer may come or go between the two calls: compared until they agree (a table
        # that never matches the RPC fails).
        seen = {}

        def ip_matches_rpc():
            peers = [p["address"] for t in rpc.torrents(["id", "peers"]) if t["id"] == 1 for p in t["peers"]]
            rc, out = remote(rpc_port, "-t", "1", "-ip")
            rows = [l for l in out.splitlines()[1:] if l.strip()]
            seen.update(peers=peers, out=out)
            return (rc == 0 and out.lstrip().startswith("Address") and len(rows) == len(peers) and
                    all(any(l.startswith(a) for l in rows) for a in peers))
        ok = wait_for(ip_matches_rpc, 10, step=0.5)
        run.check(f"transmission-remote -ip lists the torrent's peers as the RPC does ({len(seen.get('peers', []))})",
                  bool(ok), f"rpc {seen.get('peers')}\n{seen.get('out')}")
        rc, out = remote(rpc_port, "-t", "1", "-it")
        run.check("transmission-remote -it shows the tracker", rc == 0 and f"127.0.0.1:{tracker}" in out, out)
        # trackerStats carries what opentracker said: the libtorrent seeder and shoal (a seed
        # by now, or about to say so) are its seeders; the next announce is planned.
        now = time.time()
        ts = [t for t in rpc.torrents(["id", "trackerStats"]) if t["id"] == 1][0]["trackerStats"]
        st0 = ts[0] if ts else {}
        run.check("trackerStats: the last announce succeeded, with the time, the tracker's counts and the next "
                  "announce", len(ts) == 1 and st0.get("lastAnnounceSucceeded") is True and
                  st0.get("hasAnnounced") is True and now - 600 < st0.get("lastAnnounceTime", 0) <= now + 5 and
                  st0.get("seederCount", -1) >= 1 and st0.get("leecherCount", -1) >= 0 and
                  st0.get("nextAnnounceTime", 0) > now and st0.get("lastAnnounceResult") == "Success", str(ts))

        # --- stop, start, verify -----------------------------------------------------------------
        rc, out = remote(rpc_port, "-t", "1", "-S")
        st = wait_for(lambda: rpc.torrents(["status"], ids=[1])[0]["status"] == 0, 10)
        run.check("-S stops the torrent (status 0)", rc == 0 and st, out)
        rc, out = remote(rpc_port, "-t", "1", "-s")
        st = wait_for(lambda: rpc.torrents(["status"], ids=[1])[0]["status"] == 6, 20)
        run.check("-s starts it again (seeding)", rc == 0 and st, out)
        # Damage a byte of a.bin, verify: the piece is found missing and fetched again.
        with open(os.path.join(dl, "pack", "a.bin"), "r+b") as f:
            f.seek(100000)
            b = f.read(1)
            f.seek(100000)
            f.write(bytes([b[0] ^ 0xFF]))
        rc, out = remote(rpc_port, "-t", "1", "-v")
        seen_partial = wait_for(lambda: rpc.torrents(["percentDone", "status"], ids=[1])[0]["percentDone"] < 1, 20,
                                step=0.05)
        st = wait_for(lambda: rpc.torrents(["percentDone", "status"], ids=[1])[0] == {"percentDone": 1, "status": 6},
                      60)
        run.check("-v after a damaged byte: the piece is found bad", rc == 0 and bool(seen_partial), out)
        run.check("... and downloaded again: seeding, bytes identical",
                  bool(st) and h.same_tree(src, dl, ["pack/a.bin"]), str(rpc.torrents(["percentDone", "status"])))

        # --- limits, files wanted -------------------------------------------------------------------
        rc, out = remote(rpc_port, "-t", "1", "-d", "100", "-u", "200")
        t = rpc.torrents(["downloadLimit", "downloadLimited", "uploadLimit", "uploadLimited"], ids=[1])[0]
        run.check("-d 100 -u 200: the torrent's limits in kB/s",
                  rc == 0 and t == {"downloadLimit": 100, "downloadLimited": True, "uploadLimit": 200,
                                    "uploadLimited": True}, f"{out} {t}")
        rc, out = remote(rpc_port, "-t", "1", "-G", "1")
        t = rpc.torrents(["wanted"], ids=[1])[0]
        run.check("-G 1: file 1 unwanted", rc == 0 and t["wanted"] == [1, 0, 1], f"{out} {t}")
        rc, out = remote(rpc_port, "-t", "1", "-g", "1")
        t = rpc.torrents(["wanted"], ids=[1])[0]
        run.check("-g 1: wanted again", rc == 0 and t["wanted"] == [1, 1, 1], f"{out} {t}")
        rc, out = remote(rpc_port, "-t", "1", "-ph", "2")
        t = rpc.torrents(["priorities"], ids=[1])[0]
        run.check("-ph 2: file 2 high priority", rc == 0 and t["priorities"] == [0, 0, 1], f"{out} {t}")

        # --- move -------------------------------------------------------------------------------------
        rc, out = remote(rpc_port, "-t", "3", "--move", dl2)
        # The move is asynchronous: the new folder is reported once the copy is complete, and
        # the old file goes after that; wait for all three.
        moved = wait_for(lambda: rpc.torrents(["downloadDir"], ids=[3])[0]["downloadDir"] == dl2
                         and not os.path.exists(os.path.join(dl, "url.bin")) and h.same_tree(src, dl2, ["url.bin"]),
                         30)
        run.check("--move to an allowed folder: downloadDir changes, the file is there and gone from the old folder",
                  rc == 0 and bool(moved),
                  f"{out} {rpc.torrents(['downloadDir', 'errorString'], ids=[3])} {os.listdir(dl)} "
                  f"{os.listdir(dl2) if os.path.isdir(dl2) else '-'}")
        rc, out = remote(rpc_port, "-t", "2", "--move", "/tmp")
        run.check("--move outside the allowed folders: refused",
                  "outside the allowed" in out and rpc.torrents(["downloadDir"], ids=[2])[0]["downloadDir"] == dl, out)

        # --- torrent-rename-path (transmission-remote 3.00 has no flag for it) --------------------------
        r = rpc.call("torrent-rename-path", ids=[3], path="url.bin", name="renamed.bin")
        t3 = rpc.torrents(["files", "name"], ids=[3])[0]
        names = t3["files"]
        run.check("torrent-rename-path: answered with path, name and id; renamed on disk, in files and the name",
                  t3["name"] == "renamed.bin" and r.get("result") == "success" and
                  r.get("arguments") == {"path": "url.bin", "name": "renamed.bin", "id": 3} and
                  [f["name"] for f in names] == ["renamed.bin"] and
                  open(os.path.join(dl2, "renamed.bin"), "rb").read() == open(os.path.join(src, "url.bin"), "rb").read()
                  and not os.path.exists(os.path.join(dl2, "url.bin")), f"{r} {names} {os.listdir(dl2)}")
        r = rpc.call("torrent-rename-path", ids=[3], path="renamed.bin", name="../escaped.bin")
        run.check("torrent-rename-path: a name that leaves the folder is refused, nothing moves",
                  r.get("result") != "success" and os.path.exists(os.path.join(dl2, "renamed.bin")) and
                  not os.path.exists(run.path("escaped.bin")), str(r))

        # --- --find: set-location without move; the data is looked for (and checked) there ------------
        with open(os.path.join(src, "url.bin"), "rb") as f_in, open(os.path.join(dl, "renamed.bin"), "wb") as f_out:
            f_out.write(f_in.read())
        rc, out = remote(rpc_port, "-t", "3", "--find", dl)
        found = wait_for(lambda: (lambda t: t["downloadDir"] == dl and t["percentDone"] == 1 and t["status"] == 6 and
                                  t["haveValid"] == t["sizeWhenDone"])(
            rpc.torrents(["downloadDir", "percentDone", "status", "haveValid", "sizeWhenDone"], ids=[3])[0]), 30)
        run.check("--find: downloadDir changes, the renamed file is found and checked there, the old copy is untouched",
                  rc == 0 and bool(found) and os.path.exists(os.path.join(dl2, "renamed.bin")),
                  f"{out} {rpc.torrents(['downloadDir', 'percentDone', 'status', 'haveValid'], ids=[3])}")

        # --- shapes against transmission-daemon 3.00 -------------------------------------------------
        tr_cfg, tr_dl = run.path("tr-cfg"), run.path("tr-dl")
        os.makedirs(tr_cfg)
        os.makedirs(tr_dl)
        tr_port = h.free_port()
        run.spawn(["transmission-daemon", "-f", "-g", tr_cfg, "-p", str(tr_port), "-w", tr_dl, "-T",
                   "-P", str(h.free_port()), "-O", "-Y", "-M", "--no-utp", "--log-error"], "transmission.log")
        h.wait_listening(tr_port)
        tr = Rpc(tr_port)
        tr.call("torrent-add", metainfo=base64.b64encode(open(run.path("pack.torrent"), "rb").read()).decode(),
                paused=True)
        fields = ["activityDate", "addedDate", "bandwidthPriority", "comment", "corruptEver", "creator",
                  "dateCreated", "desiredAvailable", "doneDate", "downloadDir", "downloadedEver", "downloadLimit",
                  "downloadLimited", "error", "errorString", "eta", "hashString", "haveUnchecked", "haveValid",
                  "honorsSessionLimits", "id", "isFinished", "isPrivate", "labels", "leftUntilDone", "magnetLink",
                  "name", "peersConnected", "peersGettingFromUs", "peersSendingToUs", "peer-limit", "pieceCount",
                  "pieceSize", "rateDownload", "rateUpload", "recheckProgress", "secondsDownloading",
                  "secondsSeeding", "seedRatioMode", "seedRatioLimit", "sizeWhenDone", "startDate", "status",
                  "totalSize", "uploadedEver", "uploadLimit", "uploadLimited", "webseeds", "webseedsSendingToUs",
                  "files", "fileStats", "priorities", "wanted", "trackers", "trackerStats", "percentDone",
                  "queuePosition", "uploadRatio", "pieces", "peers", "peersFrom", "isStalled", "magnetLink"]
        theirs = tr.torrents(fields)
        ours = rpc.torrents(fields, ids=[1])
        run.check("transmission-daemon answered the comparison's torrent-get", len(theirs) == 1, str(theirs)[:300])
        if theirs and ours:
            diff = shape_diff(ours[0], theirs[0])
            run.check("torrent-get: every field Transmission gives, with the same JSON type", not diff, str(diff))
            for k in ("files", "fileStats", "trackers", "trackerStats"):
                if theirs[0].get(k) and ours[0].get(k):
                    diff = shape_diff(ours[0][k][0], theirs[0][k][0])
                    run.check(f"torrent-get {k}[0]: the same keys and types", not diff, str(diff))
            for k in ("name", "hashString", "totalSize", "pieceCount", "pieceSize", "isPrivate", "magnetLink"):
                run.check(f"torrent-get {k}: the same value as Transmission", ours[0][k] == theirs[0][k],
                          f"{ours[0][k]} vs {theirs[0][k]}")
            run.check("torrent-get files: the same names and lengths",
                      [(f["name"], f["length"]) for f in ours[0]["files"]]
                      == [(f["name"], f["length"]) for f in theirs[0]["files"]], str(ours[0]["files"]))
        for method in ("session-get", "session-stats"):
            a, b = rpc.call(method)["arguments"], tr.call(method)["arguments"]
            diff = shape_diff(a, b)
            run.check(f"{method}: every key Transmission gives, with the same JSON type", not diff, str(diff))
        r = rpc.call("torrent-get", fields=["id", "name"], format="table")
        table = r["arguments"].get("torrents", [])
        run.check("torrent-get format=table: a header row, then one row per torrent",
                  table and table[0] == ["id", "name"] and len(table) == 4, str(table))

        # --- restart after kill -9: same torrents, nothing downloaded again --------------------------
        before = {t["id"]: (t["name"], t["percentDone"], t["downloadDir"], t["wanted"], t["priorities"],
                            t["downloadLimit"]) for t in rpc.torrents(["id", "name", "percentDone", "downloadDir",
                                                                       "wanted", "priorities", "downloadLimit"])}
        # Killed only once every resume file holds what was set above (folder, limit, wanted
        # files and priorities): polled, not slept on.
        def resume_agrees():
            for t in rpc.torrents(["hashString", "downloadDir", "downloadLimit", "downloadLimited", "wanted",
                                   "priorities"]):
                r = read_resume(state, t["hashString"])
                if r is None:
                    return False
                want = [0 if not w else {-1: 1, 0: 4, 1: 7}[p] for w, p in zip(t["wanted"], t["priorities"])]
                prio = list(r.get(b"file priorities", b"")) or [4] * len(want)
                limit = t["downloadLimit"] * 1000 if t["downloadLimited"] else 0
                if r.get(b"save path", b"").decode() != t["downloadDir"] or prio != want or \
                        r.get(b"max download rate", 0) != limit:
                    return False
            return True
        run.check("the settings reach every resume file before the kill", bool(wait_for(resume_agrees, 30)))
        run.stop(d, sig=9)
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon2.log", "--allowed-dir", dl2)
        rpc = Rpc(rpc_port)
        ok = wait_for(lambda: len(rpc.torrents(["id"])) == 3 and all(
            t["status"] == 6 for t in rpc.torrents(["status"])), 60)
        after = {t["id"]: (t["name"], t["percentDone"], t["downloadDir"], t["wanted"], t["priorities"],
                           t["downloadLimit"]) for t in rpc.torrents(["id", "name", "percentDone", "downloadDir",
                                                                      "wanted", "priorities", "downloadLimit"])}
        run.check("after kill -9 and a restart: the same torrents, folders, limits and priorities, all seeding",
                  bool(ok) and sorted(after.values()) == sorted(before.values()), f"{before} vs {after}")
        stats = rpc.call("session-stats")["arguments"]
        run.check("... and nothing was downloaded again", stats["current-stats"]["downloadedBytes"] == 0, str(stats))

        # --- remove with data ---------------------------------------------------------------------------
        pid = after and [i for i, v in after.items() if v[0] == "pack"][0]
        rc, out = remote(rpc_port, "-t", str(pid), "--remove-and-delete")
        gone = wait_for(lambda: not os.path.exists(os.path.join(dl, "pack")), 20)
        run.check("--remove-and-delete: the torrent and its files are gone",
                  rc == 0 and bool(gone) and pid not in [t["id"] for t in rpc.torrents(["id"])], out)
        key = infos["pack"]["info_hash_v1"]
        run.check("... and its state files", not any(n.startswith(key) for n in os.listdir(os.path.join(state, "torrents"))),
                  str(os.listdir(os.path.join(state, "torrents"))))
        url_bytes = open(os.path.join(src, "url.bin"), "rb").read()
        run.check("the other downloads are untouched",
                  h.same_tree(src, dl, ["mag.bin"]) and
                  all(open(os.path.join(d, "renamed.bin"), "rb").read() == url_bytes for d in (dl, dl2)))

        # --- graceful stop ----------------------------------------------------------------------------
        d.send_signal(15)
        try:
            rc = d.wait(30)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        log = open(run.path("daemon2.log"), "rb").read().decode("utf-8", "replace")
        run.check("SIGTERM: the daemon stops cleanly (exit 0)", rc == 0 and "stopping" in log, f"{rc} {log[-500:]}")
        web.shutdown()
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
