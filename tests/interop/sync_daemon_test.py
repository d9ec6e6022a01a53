#!/usr/bin/python3
"""The daemon runs sync folders: one added over its API (shoal-sync-add, a new folder inside
the download folder) syncs both ways with a `shoal sync run` device on another port, joined
with the key shoal-sync-keys returned. Then:

- shoal-sync-get lists the folder with its state, counts, the peer (its device id, read-write)
  and the recent events; no key appears in it, in STATE/sync.json, in the daemon's log or in
  /metrics;
- a read-only key from shoal-sync-keys is accepted by `shoal sync join` too;
- a relative path, a path outside the allowed folders and a bad key are refused, and the
  bad key is not echoed;
- a concurrent change on both sides ends as a conflict copy listed by shoal-sync-get;
- after a restart the daemon runs the folder again (STATE/sync.json);
- shoal-sync-remove stops syncing it: a file written afterwards no longer spreads, and the
  folder's files stay; added again, it syncs again;
- a folder added with a tracker (a refused `ftp://` one first) is listed with it, and a
  device given only that tracker (no --peer on either side) gets its file.

Usage: sync_daemon_test.py --shoal PATH
"""
import argparse
import json
import os
import signal
import subprocess
import urllib.request

import harness as h
from daemon_test import Rpc
from tracker_test import start_tracker


def events(p, kind):
    """How many events of `kind` a `sync run --json` process printed so far."""
    return sum(1 for e in h.json_lines(p.log) if e.get("event") == kind)


def laptop_dials_refused(p):
    """Dials of a `sync run` that ended in its handshake (closed by the other side)."""
    try:
        return sum(1 for line in open(p.log) if line.startswith("sync: 127.0.0.1:") and "handshake" in line)
    except OSError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "sync-daemon")
    try:
        state, dl, port, peer_port = run.path("state"), run.path("dl"), h.free_port(), h.free_port()
        os.makedirs(state)
        daemon_argv = [run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(port),
                       "--port", str(peer_port), "--local", "--no-dht", "--no-lsd"]
        d = run.spawn(daemon_argv, "daemon.log")
        h.wait_listening(port)
        rpc = Rpc(port)

        # --- refusals
        r = rpc.call("shoal-sync-add", path="relative/dir")
        run.check("a relative path is refused", r["result"] != "success" and "absolute" in r["result"], r["result"])
        r = rpc.call("shoal-sync-add", path=run.path("elsewhere"))
        run.check("a path outside the allowed folders is refused", r["result"] != "success", r["result"])
        bad_key = "W" + "A" * 58
        r = rpc.call("shoal-sync-add", path=os.path.join(dl, "bad"), key=bad_key)
        run.check("a bad key is refused without being echoed", r["result"] != "success" and bad_key not in r["result"],
                  r["result"])

        # --- a new folder over the API
        folder = os.path.join(dl, "Shared")
        os.makedirs(folder)
        with open(os.path.join(folder, "from-daemon.txt"), "w") as f:
            f.write("written before the daemon synced it\n")
        r = rpc.call("shoal-sync-add", path=folder)
        ok = run.check("shoal-sync-add makes a new folder", r["result"] == "success", json.dumps(r))
        if not ok:
            return run.finish()
        fid = r["arguments"]["folder"]["id"]
        run.check("the new folder is read-write", r["arguments"]["folder"]["access"] == "read-write", json.dumps(r))
        r = rpc.call("shoal-sync-add", path=folder)
        run.check("the same folder twice is refused", r["result"] != "success", r["result"])
        keys = rpc.call("shoal-sync-keys", id=fid)["arguments"]
        rw, ro = keys.get("readWrite", ""), keys.get("readOnly", "")
        run.check("shoal-sync-keys returns both keys", len(rw) == 59 and len(ro) == 59 and rw != ro, json.dumps(keys))

        # --- a second device joins with the read-write key and runs on another port
        laptop = run.path("laptop")
        with open(run.path("rw.key"), "w") as f:
            f.write(rw + "\n")
        j = subprocess.run([run.shoal, "sync", "join", laptop, "--key-file", run.path("rw.key")],
                           capture_output=True, text=True, timeout=60)
        run.check("sync join accepts the read-write key", j.returncode == 0, j.stderr[-400:])
        j = subprocess.run([run.shoal, "sync", "join", run.path("phone"), "-"], input=ro + "\n",
                           capture_output=True, text=True, timeout=60)
        run.check("sync join accepts the read-only key", j.returncode == 0 and "read-only" in j.stdout,
                  (j.stdout + j.stderr)[-400:])
        with open(os.path.join(laptop, "from-laptop.txt"), "w") as f:
            f.write("written on the laptop\n")
        p = run.spawn([run.shoal, "sync", "run", laptop, "--local", "--json", "--port", "0",
                       "--peer", f"127.0.0.1:{peer_port}"], "laptop.log")

        device = h.wait_for(lambda: next((e["device"] for e in h.json_lines(p.log) if e.get("event") == "listening"),
                                         None), 30)
        run.check("the laptop runs", bool(device))

        def same(path_a, path_b):
            try:
                return open(path_a, "rb").read() == open(path_b, "rb").read()
            except OSError:
                return False
        run.check("the daemon's file reaches the laptop",
                  h.wait_for(lambda: same(os.path.join(folder, "from-daemon.txt"),
                                          os.path.join(laptop, "from-daemon.txt")), 60))
        run.check("the laptop's file reaches the daemon's folder",
                  h.wait_for(lambda: same(os.path.join(folder, "from-laptop.txt"),
                                          os.path.join(laptop, "from-laptop.txt")), 60))
        with open(os.path.join(folder, "later.txt"), "w") as f:
            f.write("a change on the daemon's side while both run\n")
        run.check("a later change on the daemon's side reaches the laptop (the watcher)",
                  h.wait_for(lambda: same(os.path.join(folder, "later.txt"), os.path.join(laptop, "later.txt")), 60))

        def folder_view():
            r = rpc.call("shoal-sync-get")
            fs_ = r.get("arguments", {}).get("folders", [])
            return fs_[0] if len(fs_) == 1 else None

        v = h.wait_for(lambda: (lambda f: f if f and f["files"] >= 3 and f["peers"] else None)(folder_view()), 30)
        run.check("shoal-sync-get counts the files and bytes", bool(v) and v["files"] == 3 and v["bytes"] > 0,
                  json.dumps(v)[:600])
        if v:
            peer = v["peers"][0]
            run.check("shoal-sync-get lists the laptop as a read-write peer",
                      peer["device"] == device and peer["access"] == "read-write" and peer["address"],
                      json.dumps(v["peers"]))
            run.check("the folder is idle once synced",
                      h.wait_for(lambda: (folder_view() or {}).get("state") == "idle", 30), json.dumps(folder_view()))
            ev = [e for e in folder_view()["events"] if e["kind"] == "sync" and e["path"] == "from-laptop.txt"]
            run.check("the recent events list the file taken from the laptop", bool(ev) and ev[0]["device"] == device,
                      json.dumps(folder_view()["events"])[:600])
        listing = json.dumps(rpc.call("shoal-sync-get"))
        run.check("shoal-sync-get shows no key", rw not in listing and ro not in listing)

        # --- a conflict: the laptop stops, both sides change the same file, it comes back
        run.stop(p)
        with open(os.path.join(folder, "later.txt"), "w") as f:
            f.write("changed on the daemon's side\n")
        with open(os.path.join(laptop, "later.txt"), "w") as f:
            f.write("changed on the laptop\n")
        p = run.spawn([run.shoal, "sync", "run", laptop, "--local", "--json", "--port", "0",
                       "--peer", f"127.0.0.1:{peer_port}"], "laptop2.log")
        conflict = h.wait_for(lambda: (folder_view() or {}).get("conflicts"), 90)
        run.check("shoal-sync-get lists the conflict copy",
                  bool(conflict) and ".sync-conflict-" in conflict[0] and
                  os.path.exists(os.path.join(folder, conflict[0])), json.dumps(folder_view())[:800])

        # --- no key in the daemon's files, log or metrics
        text = open(os.path.join(state, "sync.json")).read()
        run.check("STATE/sync.json names the folder and no key", folder in text and rw not in text and ro not in text,
                  text)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as m:
            metrics = m.read().decode()
        run.check("/metrics shows no key", rw not in metrics and ro not in metrics)

        # --- a restart runs the folder again
        run.stop(d)
        log = open(d.log).read()
        run.check("the daemon's log shows no key", rw not in log and ro not in log)
        d = run.spawn(daemon_argv, "daemon2.log")
        h.wait_listening(port)
        rpc = Rpc(port)
        v = h.wait_for(lambda: (lambda f: f if f and f["peers"] else None)(folder_view()), 60)
        run.check("after a restart the daemon runs the folder again, and the laptop reconnects",
                  bool(v) and v["path"] == folder and v["state"] != "error", json.dumps(folder_view())[:600])
        with open(os.path.join(laptop, "after-restart.txt"), "w") as f:
            f.write("after the restart\n")
        run.check("a file from the laptop arrives after the restart",
                  h.wait_for(lambda: same(os.path.join(folder, "after-restart.txt"),
                                          os.path.join(laptop, "after-restart.txt")), 60))

        # --- remove: the folder stops syncing, its files stay
        fid = v["id"] if v else fid
        lost_before = events(p, "peer-lost")
        dials_before = laptop_dials_refused(p)
        r = rpc.call("shoal-sync-remove", id=fid)
        run.check("shoal-sync-remove", r["result"] == "success", r["result"])
        run.check("the folder is no longer listed", rpc.call("shoal-sync-get")["arguments"]["folders"] == [])
        run.check("its files stay", os.path.exists(os.path.join(folder, "from-laptop.txt")) and
                  os.path.exists(os.path.join(folder, ".shoal", "folder.key")))
        r = rpc.call("shoal-sync-keys", id=fid)
        run.check("a removed folder has no keys to give", r["result"] != "success", r["result"])
        # The laptop loses the daemon (its engine stopped; a redial is closed at the hub).
        run.check("the laptop loses its peer", bool(h.wait_for(lambda: events(p, "peer-lost") > lost_before, 30)))
        scans_before = events(p, "scan")
        with open(os.path.join(laptop, "after-remove.txt"), "w") as f:
            f.write("nobody takes this\n")
        # A file that must not arrive: wait until the laptop indexed it (its scan event) and
        # redialled the daemon a few times (3 s apart), then look in the daemon's folder.
        run.check("the laptop indexes its new file", bool(h.wait_for(lambda: events(p, "scan") > scans_before, 30)))
        run.check("the laptop's redials are closed at the daemon's hub",
                  bool(h.wait_for(lambda: laptop_dials_refused(p) >= dials_before + 2, 30)))
        rpc_ok = rpc.call("session-get")["result"] == "success"
        run.check("after remove, a new file on the laptop does not reach the daemon's folder",
                  rpc_ok and not os.path.exists(os.path.join(folder, "after-remove.txt")))
        text = open(os.path.join(state, "sync.json")).read()
        run.check("STATE/sync.json no longer names it", folder not in text, text)
        # Adding it again (its engine ended and let go of the folder's lock and share id)
        # resumes from its index: the file written meanwhile arrives.
        r = rpc.call("shoal-sync-add", path=folder)
        run.check("the folder can be added again", r["result"] == "success" and
                  r["arguments"]["folder"]["access"] == "read-write", r["result"])
        run.check("then the laptop's file written meanwhile arrives",
                  h.wait_for(lambda: same(os.path.join(folder, "after-remove.txt"),
                                          os.path.join(laptop, "after-remove.txt")), 60))

        # --- a folder found through a tracker alone: no peer given on either side
        _, tport, _ = start_tracker(run, "tracker.log")
        turl = f"http://127.0.0.1:{tport}/announce"
        r = rpc.call("shoal-sync-add", path=os.path.join(dl, "shared"), trackers=["ftp://x/announce"])
        run.check("shoal-sync-add refuses a tracker that is not an announce URL", r["result"] != "success", r["result"])
        tracked = os.path.join(dl, "tracked")
        os.makedirs(tracked)
        with open(os.path.join(tracked, "via-tracker.txt"), "w") as f:
            f.write("found through the tracker\n")
        r = rpc.call("shoal-sync-add", path=tracked, trackers=[turl])
        ok = run.check("shoal-sync-add with a tracker", r["result"] == "success", r["result"])
        if ok:
            tid = r["arguments"]["folder"]["id"]
            listed = [f for f in rpc.call("shoal-sync-get")["arguments"]["folders"] if f["id"] == tid]
            run.check("... listed with its tracker", listed and listed[0].get("trackers") == [turl], str(listed))
            tkey = rpc.call("shoal-sync-keys", id=tid)["arguments"]["readWrite"]
            other = run.path("other")
            subprocess.run([run.shoal, "sync", "join", other, "-"], input=tkey, text=True, check=True,
                           capture_output=True, timeout=60)
            run.spawn([run.shoal, "sync", "run", other, "--local", "--json", "--port", "0", "--tracker", turl],
                      "other.log")
            run.check("a device with the same tracker and no --peer gets the daemon folder's file",
                      h.wait_for(lambda: same(os.path.join(tracked, "via-tracker.txt"),
                                              os.path.join(other, "via-tracker.txt")), 90))
        run.stop(d, sig=signal.SIGTERM)
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
