#!/usr/bin/python3
"""The web UI's Sync page (tests/web/sync_test.mjs in headless Chromium) over a real daemon:
a folder is added in the page (a new one, inside the download folder), its keys revealed
there; this script joins a second device with the read-write key the page showed
(`shoal sync join --key-file`), runs it (`shoal sync run --local --peer` the daemon's
port) with a file of its own, and the page must show the device among the peers, the file
counted and its sync in the recent events. The file must be in the daemon's folder.

Usage: web_sync_test.py --shoal PATH [--shots DIR]
"""
import argparse
import json
import os
import shutil
import subprocess

import harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "web", "sync_test.mjs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--shots", default="")
    args = ap.parse_args()
    run = h.Run(args.shoal, "web-sync")
    try:
        if not h.browser_tools_ready(run):
            return run.finish()
        state, dl, port, peer_port = run.path("state"), run.path("dl"), h.free_port(), h.free_port()
        os.makedirs(state)
        run.spawn([run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(port),
                   "--port", str(peer_port), "--local", "--no-dht", "--no-lsd"], "daemon.log")
        h.wait_listening(port)
        folder = os.path.join(dl, "Shared")
        other = run.path("laptop")
        os.makedirs(other)
        with open(os.path.join(other, "hello.txt"), "w") as f:
            f.write("from the laptop\n")
        shots = args.shots or run.path("shots")
        if os.path.isdir(shots):
            shutil.rmtree(shots)
        key_out, device_file = run.path("key"), run.path("device")
        driver = subprocess.Popen(
            ["node", DRIVER, "--url", f"http://127.0.0.1:{port}/", "--folder", folder, "--key-out", key_out,
             "--device", device_file, "--file", "hello.txt", "--shots", shots],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The other device's part: once the page showed the key, join with it and run.
        if h.wait_for(lambda: os.path.exists(key_out) or driver.poll() is not None, 120) and os.path.exists(key_out):
            j = subprocess.run([run.shoal, "sync", "join", other, "--key-file", key_out, "--json"],
                               capture_output=True, text=True, timeout=60)
            if run.check("sync join accepts the key the page showed", j.returncode == 0, j.stderr[-400:]):
                p = run.spawn([run.shoal, "sync", "run", other, "--local", "--json", "--port", "0",
                               "--peer", f"127.0.0.1:{peer_port}"], "laptop.log")
                ev = h.wait_for(lambda: next((e for e in h.json_lines(p.log) if e.get("event") == "listening"), None), 30)
                if run.check("the laptop device runs", bool(ev)):
                    with open(device_file + ".tmp", "w") as f:
                        f.write(ev["device"])
                    os.rename(device_file + ".tmp", device_file)
        try:
            out, err = driver.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            driver.kill()
            out, err = driver.communicate()
            err += "\ntimeout"
        steps = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        for s in steps:
            run.check(f"sync page: {s['step']}", s["ok"], s.get("detail", ""))
        run.check("sync page: every step ran",
                  any(s["step"] == "closing the page forgets the keys shown" and s["ok"] for s in steps),
                  (out + err)[-800:])
        path = os.path.join(folder, "hello.txt")
        run.check("the laptop's file is in the daemon's folder",
                  h.wait_for(lambda: os.path.exists(path) and open(path).read() == "from the laptop\n", 30))
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
