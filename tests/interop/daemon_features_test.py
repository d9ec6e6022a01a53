#!/usr/bin/python3
"""shoal daemon's own features, each checked end to end with libtorrent seeders behind
opentracker on loopback: sd_notify readiness (READY, RELOADING, STOPPING), the watch folder
(.added, .invalid), the download queue (one at a time), the incomplete folder and the move
on completion, a completion program whose name has spaces and ';' (no shell runs it), a
seeding goal that stops a torrent, the turtle schedule switching alt speeds at its edges,
SIGHUP rereading settings.json, a /metrics scrape, and the JSON-RPC 2.0 dialect.

Usage: daemon_features_test.py --shoal PATH
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import harness as h
from daemon_test import Rpc, wait_for


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "daemon-features")
    try:
        src = run.path("src")
        sizes = {"move": 3 << 20, "q1": 8 << 20, "q2": 8 << 20, "goal": 1 << 20, "watch": 1 << 20}
        for i, (n, size) in enumerate(sizes.items()):
            h.write_random(os.path.join(src, f"{n}.bin"), size, seed=20 + i)
        infos = {n: h.shoal_create(run, os.path.join(src, f"{n}.bin"), run.path(f"{n}.torrent"), "--v1")
                 for n in sizes}
        tracker = h.start_opentracker(run, [i["info_hash_v1"] for i in infos.values()])
        for n in sizes:
            infos[n] = h.shoal_create(run, os.path.join(src, f"{n}.bin"), run.path(f"{n}.torrent"), "--v1",
                                      "-t", f"http://127.0.0.1:{tracker}/announce")
            h.lt_peer(run, "seed", run.path(f"{n}.torrent"), src, h.free_port(), f"lt-{n}.log", seconds=600)

        state, dl, inc, watch = run.path("state"), run.path("dl"), run.path("incomplete"), run.path("watch")
        os.makedirs(state)
        os.makedirs(watch)
        # The completion program: its name has spaces and ';'. Run by a shell, the name would
        # be two commands, the second creating PWNED in the daemon's working folder.
        prog_dir = run.path("bin dir")
        os.makedirs(prog_dir)
        prog = os.path.join(prog_dir, "done; touch PWNED")
        out_file = run.path("program-output.txt")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\n"
                    f"printf '%s|%s|%s|%s|%s\\n' \"$TR_TORRENT_NAME\" \"$TR_TORRENT_DIR\" \"$TR_TORRENT_HASH\" "
                    f"\"$TR_TORRENT_ID\" \"$#\" >> '{out_file}'\n")
        os.chmod(prog, 0o755)
        settings = {
            "watch-dir": watch, "watch-dir-enabled": True,
            "incomplete-dir": inc, "incomplete-dir-enabled": True,
            "script-torrent-done-filename": prog, "script-torrent-done-enabled": True,
            "download-queue-enabled": True, "download-queue-size": 1,
            # libtorrent does not limit loopback peers: the daemon's own limit makes each
            # 8 MiB queue download last seconds on any machine, so the queue can be seen.
            "speed-limit-down": 4000, "speed-limit-down-enabled": True,
        }
        with open(os.path.join(state, "settings.json"), "w") as f:
            json.dump(settings, f)

        notify_path = run.path("notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(20)
        rpc_port = h.free_port()
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        workdir = run.path("cwd")
        os.makedirs(workdir)
        d = run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(rpc_port),
                       "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd", "-v"], "daemon.log", env=env,
                      cwd=workdir)

        def notified(word, timeout=20):
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    msg = notify.recv(4096).decode()
                except socket.timeout:
                    return False
                if word in msg.split("\n"):
                    return True
            return False
        run.check("sd_notify: READY=1 once the RPC port listens", notified("READY=1") and h.wait_listening(rpc_port, 5))
        rpc = Rpc(rpc_port)

        # --- the queue: two downloads, one at a time ---------------------------------------
        for n in ("q1", "q2"):
            with open(run.path(f"{n}.torrent"), "rb") as f:
                import base64
                r = rpc.call("torrent-add", metainfo=base64.b64encode(f.read()).decode(), **{"download-dir": dl})
            run.check(f"add {n}", r["result"] == "success", str(r))
        both_active = False
        saw_waiting = False
        deadline = time.time() + 90
        while time.time() < deadline:
            ts = rpc.torrents(["id", "status", "percentDone"])
            statuses = [t["status"] for t in ts]
            if statuses.count(4) > 1:
                both_active = True
            if 3 in statuses:
                saw_waiting = True
            if len(ts) == 2 and all(t["percentDone"] == 1 for t in ts):
                break
            time.sleep(0.1)
        ts = rpc.torrents(["id", "status", "percentDone"])
        run.check("download-queue-size 1: both complete", len(ts) == 2 and all(t["percentDone"] == 1 for t in ts),
                  str(ts))
        run.check("... never two downloading at once", not both_active)
        run.check("... the second waited in the queue (status 3)", saw_waiting)

        # --- incomplete folder, move on completion, the completion program ---------------
        with open(run.path("move.torrent"), "rb") as f:
            import base64
            r = rpc.call("torrent-add", metainfo=base64.b64encode(f.read()).decode())
        mid = r["arguments"].get("torrent-added", {}).get("id")
        seen_inc = wait_for(lambda: rpc.torrents(["downloadDir"], ids=[mid])[0]["downloadDir"] == inc, 10, step=0.05)
        run.check("with incomplete-dir: the download grows in the incomplete folder", bool(seen_inc),
                  str(rpc.torrents(["downloadDir", "status"], ids=[mid])))
        # downloadDir names the new folder as soon as the data is linked there; the old name
        # is removed a moment later, so the wait covers both.
        moved = wait_for(lambda: rpc.torrents(["downloadDir", "percentDone"], ids=[mid])[0] ==
                         {"downloadDir": dl, "percentDone": 1} and not os.path.exists(os.path.join(inc, "move.bin")),
                         60)
        run.check("... and moves to the download folder once complete",
                  bool(moved) and h.same_tree(src, dl, ["move.bin"]),
                  str(rpc.torrents(["downloadDir", "percentDone", "errorString"], ids=[mid])))
        lines = wait_for(lambda: [l for l in open(out_file).read().splitlines() if l.startswith("move.bin|")]
                         if os.path.exists(out_file) else [], 20)
        expect = f"move.bin|{dl}|{infos['move']['info_hash_v1']}|{mid}|0"
        run.check("the completion program ran once the move was done, with TR_* set and no arguments",
                  lines == [expect], f"{lines} vs {expect}")
        ran = open(out_file).read().splitlines() if os.path.exists(out_file) else []
        run.check("... for every completed torrent (the queue's too)",
                  sorted(l.split("|")[0] for l in ran) == ["move.bin", "q1.bin", "q2.bin"], str(ran))
        run.check("... and no shell ran its name (no PWNED file)", not os.path.exists(os.path.join(workdir, "PWNED"))
                  and not os.path.exists(os.path.join(run.dir, "PWNED")))

        # --- a seeding goal that stops a torrent ---------------------------------------------
        with open(run.path("goal.torrent"), "rb") as f:
            import base64
            r = rpc.call("torrent-add", metainfo=base64.b64encode(f.read()).decode(), paused=True)
        gid = r["arguments"]["torrent-added"]["id"]
        rpc.call("torrent-set", ids=[gid], seedRatioMode=1, seedRatioLimit=0)
        rpc.call("torrent-start", ids=[gid])
        stopped = wait_for(lambda: rpc.torrents(["status", "percentDone", "isFinished"], ids=[gid])[0] ==
                           {"status": 0, "percentDone": 1, "isFinished": True}, 60)
        run.check("a seed ratio goal of 0: complete, then stopped (status 0, isFinished)", bool(stopped),
                  str(rpc.torrents(["status", "percentDone", "isFinished", "seedRatioMode", "seedRatioLimit"],
                                   ids=[gid])))

        # --- the watch folder ------------------------------------------------------------------
        with open(run.path("watch.torrent"), "rb") as f:
            data = f.read()
        with open(os.path.join(watch, "dropped.torrent"), "wb") as f:
            f.write(data)
        with open(os.path.join(watch, "junk.torrent"), "wb") as f:
            f.write(b"this is not bencode")
        added = wait_for(lambda: os.path.exists(os.path.join(watch, "dropped.torrent.added")), 20)
        run.check("watch folder: a dropped .torrent is added and renamed .added",
                  bool(added) and any(t["name"] == "watch.bin" for t in rpc.torrents(["name"])),
                  str(os.listdir(watch)))
        run.check("watch folder: a file that is not a torrent is renamed .invalid",
                  bool(wait_for(lambda: os.path.exists(os.path.join(watch, "junk.torrent.invalid")), 10)),
                  str(os.listdir(watch)))

        # --- the turtle schedule ---------------------------------------------------------------
        now = time.localtime()
        minute = now.tm_hour * 60 + now.tm_min
        rpc.call("session-set", **{"alt-speed-time-enabled": True, "alt-speed-time-begin": (minute - 1) % 1440,
                                   "alt-speed-time-end": (minute + 10) % 1440, "alt-speed-time-day": 127})
        on = wait_for(lambda: rpc.call("session-get")["arguments"]["alt-speed-enabled"] is True, 25)
        run.check("turtle schedule: alt speeds switch on inside the window", bool(on))
        rpc.call("session-set", **{"alt-speed-time-begin": (minute + 60) % 1440,
                                   "alt-speed-time-end": (minute + 120) % 1440})
        off = wait_for(lambda: rpc.call("session-get")["arguments"]["alt-speed-enabled"] is False, 25)
        run.check("... and off when the window no longer holds the time", bool(off))

        # --- SIGHUP rereads settings.json --------------------------------------------------------
        cfg_path = os.path.join(state, "settings.json")
        cfg = json.load(open(cfg_path))
        cfg["speed-limit-up"] = 123
        cfg["speed-limit-up-enabled"] = True
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        d.send_signal(signal.SIGHUP)
        reloaded = notified("RELOADING=1") and notified("READY=1")
        sg = wait_for(lambda: (lambda a: a["speed-limit-up"] == 123 and a["speed-limit-up-enabled"])(
            rpc.call("session-get")["arguments"]), 10)
        run.check("SIGHUP: settings.json reread (speed-limit-up 123 kB/s on), RELOADING then READY",
                  bool(sg) and reloaded, str(rpc.call("session-get", fields=["speed-limit-up"])))

        # --- /metrics ---------------------------------------------------------------------------------
        with urllib.request.urlopen(f"http://127.0.0.1:{rpc_port}/metrics", timeout=10) as r:
            text = r.read().decode()
            ctype = r.headers.get("Content-Type", "")
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                values[k] = float(v)
        n = len(rpc.torrents(["id"]))
        complete = sum(1 for t in rpc.torrents(["percentDone"]) if t["percentDone"] == 1)
        total = sum(v for k, v in values.items() if k.startswith("shoal_torrents{"))
        run.check("/metrics: Prometheus text with torrents by state, API counters",
                  ctype.startswith("text/plain") and total == n and values.get("shoal_api_requests_total", 0) > 10
                  and "shoal_dht_nodes" in values and values.get("shoal_done_programs_total") == complete == 5,
                  f"{ctype} {n} {values}")

        # --- JSON-RPC 2.0 over HTTP -------------------------------------------------------------------
        code, hdrs, body = rpc.raw(json.dumps({"jsonrpc": "2.0", "method": "torrent_get",
                                               "params": {"fields": ["id", "hash_string", "download_dir"],
                                                          "ids": [mid]}, "id": 77}),
                                   {"X-Transmission-Session-Id": rpc.sid})
        j = json.loads(body) if code == 200 else {}
        run.check("JSON-RPC 2.0: snake_case in and out, the id echoed",
                  j.get("id") == 77 and j.get("result", {}).get("torrents", [{}])[0].get("hash_string")
                  == infos["move"]["info_hash_v1"] and j["result"]["torrents"][0].get("download_dir") == dl, body)
        code, hdrs, _ = Rpc(rpc_port).raw("{}")
        run.check("the 409 answer names the RPC version (X-Transmission-Rpc-Version)",
                  code == 409 and hdrs.get("X-Transmission-Rpc-Version") == "6.0.0", str(hdrs))

        log = open(run.path("daemon.log"), "rb").read().decode("utf-8", "replace")
        run.check("-v: the engine's log lines, each naming its torrent",
                  "[move.bin] " in log and "[q1.bin] " in log, log[-600:])

        d.send_signal(signal.SIGTERM)
        run.check("SIGTERM: STOPPING=1, exit 0", notified("STOPPING=1") and d.wait(30) == 0)
        notify.close()
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
