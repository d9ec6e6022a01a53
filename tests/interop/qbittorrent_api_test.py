#!/usr/bin/python3
"""shoal daemon's qBittorrent Web API next to a real qbittorrent-nox 4.5 in the same run:
the same calls go to both (login, version, categories, add a multi-file torrent with a
category and tags, info, properties, files, trackers, tags, transfer/info, sync/maindata,
preferences) and the answers must have the same field names and JSON types, and the same
values where the two must agree. Then a download through the API alone (a magnet from
libtorrent behind opentracker: start, set a category, tags, a file priority, limits, share
limits, move, recheck, sync/maindata deltas, delete with files) and the API's security
with a password: wrong logins fail and hit the guard, no SID is refused, a foreign
Referer is refused.

Usage: qbittorrent_api_test.py --shoal PATH
"""
import argparse
import http.cookiejar
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import harness as h
from daemon_test import shape_diff, type_name, wait_for


class Qb:
    """A qBittorrent Web API client (urlencoded and multipart POSTs, the SID cookie)."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}/api/v2/"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def req(self, path, data=None, files=None, headers=None, method=None):
        url = self.base + path
        body, hdrs = None, dict(headers or {})
        if files is not None:
            boundary = uuid.uuid4().hex
            parts = []
            for k, v in (data or {}).items():
                parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode())
            for name, blob in files:
                parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"{name}\"\r\n"
                             "Content-Type: application/x-bittorrent\r\n\r\n".encode() + blob + b"\r\n")
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            hdrs["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        r = urllib.request.Request(url, data=body, headers=hdrs, method=method or ("POST" if body is not None else "GET"))
        try:
            with self.opener.open(r, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get(self, path):
        code, text = self.req(path)
        try:
            return json.loads(text) if code == 200 else None
        except ValueError:
            return None

    def post(self, path, **data):
        return self.req(path, data=data)


def start_qbittorrent(run, dl):
    profile = run.path("qb-profile")
    cfg = os.path.join(profile, "qBittorrent", "config")
    os.makedirs(cfg)
    port = h.free_port()
    with open(os.path.join(cfg, "qBittorrent.conf"), "w") as f:
        f.write("[LegalNotice]\nAccepted=true\n\n[Preferences]\n"
                f"WebUI\\LocalHostAuth=false\nWebUI\\Port={port}\nWebUI\\Address=127.0.0.1\n"
                f"Downloads\\SavePath={dl}\nConnection\\PortRangeMin={h.free_port()}\n"
                "Bittorrent\\DHT=false\nBittorrent\\LSD=false\nBittorrent\\PeX=false\nConnection\\UPnP=false\n")
    p = run.spawn(["qbittorrent-nox", f"--profile={profile}"], "qbittorrent.log")
    h.wait_listening(port)
    return p, Qb(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "qbittorrent-api")
    try:
        src = run.path("src")
        h.write_random(os.path.join(src, "pack", "a.bin"), 700000, seed=31)
        h.write_random(os.path.join(src, "pack", "sub", "b.bin"), 300000, seed=32)
        h.write_random(os.path.join(src, "live.bin"), 3 << 20, seed=33)
        h.write_random(os.path.join(src, "live2", "x.bin"), 1 << 20, seed=34)
        h.write_random(os.path.join(src, "live2", "y.bin"), 1 << 20, seed=35)
        infos = {}
        for n, path in (("pack", "pack"), ("live", "live.bin"), ("live2", "live2")):
            infos[n] = h.shoal_create(run, os.path.join(src, path), run.path(f"{n}.torrent"), "--v1",
                                      "--piece-size", "64KiB")
        tracker = h.start_opentracker(run, [infos["live"]["info_hash_v1"], infos["live2"]["info_hash_v1"]])
        announce = f"http://127.0.0.1:{tracker}/announce"
        for n, path in (("live", "live.bin"), ("live2", "live2")):
            infos[n] = h.shoal_create(run, os.path.join(src, path), run.path(f"{n}.torrent"), "--v1",
                                      "--piece-size", "64KiB", "-t", announce)
            h.lt_peer(run, "seed", run.path(f"{n}.torrent"), src, h.free_port(), f"lt-{n}.log", seconds=600)

        qb_dl, dl, dl2 = run.path("qb-dl"), run.path("dl"), run.path("dl2")
        os.makedirs(qb_dl)
        _, qb = start_qbittorrent(run, qb_dl)
        state = run.path("state")
        rpc_port = h.free_port()
        d = run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(rpc_port),
                       "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd", "--allowed-dir", dl2],
                      "daemon.log")
        h.wait_listening(rpc_port)
        sh = Qb(rpc_port)

        # --- the same calls to both --------------------------------------------------------
        for api in (qb, sh):
            code, text = api.post("auth/login", username="admin", password="anything")
            run.check(f"{'qbittorrent' if api is qb else 'shoal'}: auth/login without a password set (localhost): Ok.",
                      code == 200 and text == "Ok.", f"{code} {text}")
        run.check("app/version and app/webapiVersion as qbittorrent-nox 4.5 answers them",
                  sh.req("app/version") == qb.req("app/version") and
                  sh.req("app/webapiVersion") == qb.req("app/webapiVersion"),
                  f"{sh.req('app/version')} {qb.req('app/version')}")
        pack = open(run.path("pack.torrent"), "rb").read()
        for api in (qb, sh):
            code, text = api.post("torrents/createCategory", category="tv", savePath="")
            run.check(f"{'qbittorrent' if api is qb else 'shoal'}: createCategory", code == 200, f"{code} {text}")
            code, text = api.req("torrents/add", data={"category": "tv", "tags": "a,b", "paused": "true"},
                                 files=[("pack.torrent", pack)])
            run.check(f"{'qbittorrent' if api is qb else 'shoal'}: torrents/add (multipart, category, tags, paused)",
                      code == 200 and text == "Ok.", f"{code} {text}")
        ph = infos["pack"]["info_hash_v1"]
        # qBittorrent reads its resume data first (state checkingResumeData): compare after.
        wait_for(lambda: (qb.get(f"torrents/info?hashes={ph}") or [{}])[0].get("state") == "pausedDL", 20)
        q_info, s_info = qb.get(f"torrents/info?hashes={ph}"), sh.get(f"torrents/info?hashes={ph}")
        run.check("torrents/info: one torrent on each", q_info and s_info and len(q_info) == len(s_info) == 1,
                  f"{q_info} {s_info}")
        if q_info and s_info:
            q, s = q_info[0], s_info[0]
            run.check("torrents/info: the same field names and JSON types", not shape_diff(s, q) and not shape_diff(q, s),
                      f"{shape_diff(s, q)} / extra: {shape_diff(q, s)}")
            for k in ("hash", "name", "size", "total_size", "category", "tags", "state", "progress", "amount_left",
                      "infohash_v1", "magnet_uri", "num_seeds", "ratio_limit", "seeding_time_limit"):
                run.check(f"torrents/info {k}: the same value", s.get(k) == q.get(k), f"{s.get(k)!r} vs {q.get(k)!r}")
        pairs = [(f"torrents/properties?hash={ph}", ["name", "total_size", "piece_size", "pieces_num", "is_private",
                                                      "created_by", "hash", "comment"]),
                 (f"torrents/files?hash={ph}", None), (f"torrents/trackers?hash={ph}", None),
                 ("torrents/categories", None), ("torrents/tags", None), ("transfer/info", None)]
        for path, same in pairs:
            qa, sa = qb.get(path), sh.get(path)
            if isinstance(qa, list):
                run.check(f"{path.split('?')[0]}: as many entries", sa is not None and len(sa) == len(qa), f"{sa} vs {qa}")
                if qa and sa and isinstance(qa[0], dict):
                    diff = shape_diff(sa[0], qa[0])
                    run.check(f"{path.split('?')[0]}[0]: the same field names and types", not diff, str(diff))
                    # Every entry, not only the first (torrents/trackers: the real tracker's
                    # entry comes after the DHT, PeX and LSD ones).
                    diffs = [shape_diff(x, y) for x, y in zip(sa, qa)]
                    run.check(f"{path.split('?')[0]}: every entry has qBittorrent's field names and types",
                              not any(diffs), str(diffs))
                if path.startswith("torrents/files"):
                    run.check("torrents/files: the same names, sizes, piece ranges and priorities",
                              [(f["name"], f["size"], f["piece_range"], f["priority"]) for f in sa] ==
                              [(f["name"], f["size"], f["piece_range"], f["priority"]) for f in qa], f"{sa} vs {qa}")
                if path == "torrents/tags":
                    run.check("torrents/tags: the same tags", sorted(sa) == sorted(qa), f"{sa} vs {qa}")
            else:
                diff = shape_diff(sa or {}, qa or {})
                run.check(f"{path.split('?')[0]}: the same field names and types", qa is not None and not diff, str(diff))
                for k in same or []:
                    run.check(f"{path.split('?')[0]} {k}: the same value", sa.get(k) == qa.get(k),
                              f"{sa.get(k)!r} vs {qa.get(k)!r}")
        run.check("torrents/categories: the same categories", sh.get("torrents/categories") == qb.get("torrents/categories"),
                  f"{sh.get('torrents/categories')} vs {qb.get('torrents/categories')}")
        qm, sm = qb.get("sync/maindata?rid=0"), sh.get("sync/maindata?rid=0")
        run.check("sync/maindata (full): the same top-level keys and server_state shape",
                  qm and sm and set(qm) == set(sm) and not shape_diff(sm["server_state"], qm["server_state"]),
                  f"{sorted(sm or {})} vs {sorted(qm or {})}; {shape_diff((sm or {}).get('server_state', {}), (qm or {}).get('server_state', {}))}")
        qp, sp = qb.get("app/preferences"), sh.get("app/preferences")
        theirs_only = {k: v for k, v in (qp or {}).items() if k in (sp or {})}
        wrong = shape_diff(sp or {}, theirs_only)
        unknown = [k for k in (sp or {}) if k not in (qp or {})]
        needed = ["save_path", "max_ratio_enabled", "max_ratio", "max_ratio_act", "max_seeding_time_enabled",
                  "max_seeding_time", "queueing_enabled", "max_active_downloads", "max_active_uploads", "dl_limit",
                  "up_limit", "listen_port", "dht", "temp_path_enabled", "temp_path"]
        run.check("app/preferences: Sonarr/Radarr's keys present, each with qBittorrent's type, none unknown",
                  qp and sp and not wrong and not unknown and all(k in sp for k in needed),
                  f"types: {wrong}; unknown: {unknown}; missing: {[k for k in needed if k not in (sp or {})]}")

        # --- renameFile and renameFolder: the same calls on both, the same file names after ------
        def names(api):
            return [f["name"] for f in (api.get(f"torrents/files?hash={ph}") or [])]
        before = names(sh)
        renames = [("torrents/renameFile", "pack/a.bin", "pack/a-renamed.bin"),
                   ("torrents/renameFolder", "pack/sub", "pack/sub-renamed")]
        for call, old_path, new_path in renames:
            codes = [api.post(call, hash=ph, oldPath=old_path, newPath=new_path)[0] for api in (qb, sh)]
            run.check(f"{call}: 200 from both", codes == [200, 200], str(codes))
        # qBittorrent renames asynchronously: wait until it shows both new names.
        wait_for(lambda: all(any(n.startswith(new) for n in names(qb)) for _, _, new in renames), 15)
        run.check("renameFile/renameFolder: the same file names on both afterwards",
                  sorted(names(sh)) == sorted(names(qb)) and names(sh) != before, f"{names(sh)} vs {names(qb)}")
        codes = [api.post("torrents/rename", hash=ph, name="Pack, renamed")[0] for api in (qb, sh)]
        shown = wait_for(lambda: [(api.get(f"torrents/info?hashes={ph}") or [{}])[0].get("name") for api in (qb, sh)]
                         if (qb.get(f"torrents/info?hashes={ph}") or [{}])[0].get("name") == "Pack, renamed" else None, 15)
        run.check("torrents/rename: 200 from both, the same new name in torrents/info, the files keep theirs",
                  codes == [200, 200] and shown == ["Pack, renamed", "Pack, renamed"] and
                  "pack/a-renamed.bin" in names(sh), f"{codes} {shown}")
        code, text = sh.post("torrents/renameFile", hash=ph, oldPath="pack/a-renamed.bin", newPath="pack/../../x.bin")
        run.check("renameFile out of the torrent's folder: 409, nothing renamed",
                  code == 409 and "pack/a-renamed.bin" in names(sh), f"{code} {text}")

        # --- a download through the API alone -------------------------------------------------
        lh = infos["live"]["info_hash_v1"]
        code, text = sh.post("torrents/add", urls=f"magnet:?xt=urn:btih:{lh}&dn=live.bin&tr={announce}",
                             category="tv", paused="false")
        run.check("torrents/add urls=MAGNET", code == 200 and text == "Ok.", f"{code} {text}")
        done = wait_for(lambda: (sh.get(f"torrents/info?hashes={lh}") or [{}])[0].get("progress") == 1, 90)
        t = (sh.get(f"torrents/info?hashes={lh}") or [{}])[0]
        run.check("... downloads from libtorrent: progress 1, bytes identical",
                  bool(done) and h.same_tree(src, dl, ["live.bin"]) and t.get("category") == "tv", str(t))
        # Finished is verified and flushed: the state turns once the last write is synced,
        # a moment after progress reaches 1.
        seeding = wait_for(lambda: (sh.get(f"torrents/info?hashes={lh}") or [{}])[0].get("state")
                           in ("uploading", "stalledUP"), 15)
        run.check("... state uploading or stalledUP once complete", bool(seeding),
                  str((sh.get(f"torrents/info?hashes={lh}") or [{}])[0].get("state")))
        code, text = sh.post("torrents/createCategory", category="movies", savePath=dl2)
        sh.post("torrents/setCategory", hashes=lh, category="movies")
        sh.post("torrents/addTags", hashes=lh, tags="x,y")
        sh.post("torrents/removeTags", hashes=lh, tags="x")
        t = (sh.get(f"torrents/info?hashes={lh}") or [{}])[0]
        run.check("setCategory, addTags, removeTags", t.get("category") == "movies" and t.get("tags") == "y", str(t))
        run.check("filter=completed and category=movies select it",
                  [x["hash"] for x in sh.get("torrents/info?filter=completed&category=movies")] == [lh])
        sh.post("torrents/setDownloadLimit", hashes=lh, limit=500000)
        sh.post("torrents/setShareLimits", hashes=lh, ratioLimit=3, seedingTimeLimit=120, inactiveSeedingTimeLimit=-2)
        t = (sh.get(f"torrents/info?hashes={lh}") or [{}])[0]
        run.check("setDownloadLimit (bytes/s) and setShareLimits (ratio, minutes)",
                  t.get("dl_limit") == 500000 and t.get("ratio_limit") == 3 and t.get("seeding_time_limit") == 120, str(t))
        rid = sh.get("sync/maindata?rid=0")["rid"]
        sh.post("torrents/pause", hashes=lh)
        # Polled a few times (each answer is a new snapshot and 16 are kept), not slept on.
        delta = wait_for(lambda: (lambda d: d if d.get("torrents", {}).get(lh, {}).get("state") == "pausedUP" else None)(
            sh.get(f"sync/maindata?rid={rid}") or {}), 5, step=0.5) or sh.get(f"sync/maindata?rid={rid}") or {}
        run.check("sync/maindata with rid: a delta naming only what changed (no full_update)",
                  "full_update" not in delta and delta.get("torrents", {}).get(lh, {}).get("state") == "pausedUP"
                  and "name" not in delta.get("torrents", {}).get(lh, {}), json.dumps(delta)[:400])
        sh.post("torrents/resume", hashes=lh)
        code, text = sh.post("torrents/setLocation", hashes=lh, location=dl2)
        moved = wait_for(lambda: (sh.get(f"torrents/info?hashes={lh}") or [{}])[0].get("save_path") == dl2, 30)
        run.check("setLocation moves the data", code == 200 and bool(moved) and h.same_tree(src, dl2, ["live.bin"]),
                  f"{code} {text}")
        code, text = sh.post("torrents/setLocation", hashes=lh, location="/etc")
        run.check("setLocation outside the allowed folders: 403", code == 403, f"{code} {text}")
        l2 = infos["live2"]["info_hash_v1"]
        code, text = sh.req("torrents/add", data={"paused": "true"}, files=[("live2.torrent", open(run.path("live2.torrent"), "rb").read())])
        wait_for(lambda: sh.get(f"torrents/files?hash={l2}"), 10)
        sh.post("torrents/filePrio", hash=l2, id="1", priority=0)
        sh.post("torrents/resume", hashes=l2)
        files = wait_for(lambda: (lambda fs: fs if fs and fs[0]["progress"] == 1 else None)(sh.get(f"torrents/files?hash={l2}")), 60)
        run.check("filePrio 0 on file 1: file 0 downloads, file 1 is skipped",
                  bool(files) and files[1]["priority"] == 0 and h.same_tree(src, dl, ["live2/x.bin"]),
                  f"{sh.get(f'torrents/files?hash={l2}')} {sh.get(f'torrents/info?hashes={l2}')}")
        code, text = sh.post("torrents/delete", hashes=lh, deleteFiles="true")
        gone = wait_for(lambda: not os.path.exists(os.path.join(dl2, "live.bin")), 20)
        run.check("torrents/delete deleteFiles=true: the torrent and its data are gone",
                  code == 200 and bool(gone) and not sh.get(f"torrents/info?hashes={lh}"), f"{code} {text}")
        run.stop(d)

        # --- security with a password ------------------------------------------------------------
        subprocess.run([run.shoal, "daemon", "--state-dir", state, "--set-password", "--rpc-username", "me"],
                       input="s3cret-pass\n", text=True, capture_output=True, check=True)
        d = run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(rpc_port),
                       "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd"], "daemon2.log")
        h.wait_listening(rpc_port)
        anon = Qb(rpc_port)
        code, _ = anon.req("torrents/info")
        run.check("with a password: a call without the SID cookie is refused (403)", code == 403, str(code))
        code, text = anon.post("auth/login", username="me", password="wrong")
        run.check("a wrong password: Fails.", code == 200 and text == "Fails.", f"{code} {text}")
        for _ in range(3):
            anon.post("auth/login", username="me", password="wrong")
        code, text = anon.post("auth/login", username="me", password="s3cret-pass")
        run.check("after four failures even the right password waits (403, banned for now)", code == 403, f"{code} {text}")
        time.sleep(2.5)
        code, text = anon.post("auth/login", username="me", password="s3cret-pass")
        run.check("... and after the wait it logs in (Ok. with a SID cookie)",
                  code == 200 and text == "Ok." and any(c.name == "SID" for c in anon.jar), f"{code} {text}")
        run.check("... and the SID opens the API", isinstance(anon.get("torrents/info"), list))
        code, text = anon.req("torrents/info", headers={"Referer": "http://evil.example/page"})
        run.check("a foreign Referer (CSRF): 401", code == 401, f"{code} {text}")
        code, text = anon.req("torrents/info", headers={"Host": "evil.example"})
        run.check("a foreign Host (DNS rebinding): 421", code == 421, f"{code} {text}")
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
