#!/usr/bin/python3
"""50 torrents in mixed states in `shoal daemon`, then kill -9 and a restart: the same
torrents come back with the same states, labels, limits, goals, wanted files and queue
order, the complete ones seed at once with their verified data (nothing checked or
fetched again), and ids still count from 1 in add order.

Mixed: 30 whose data is already in the download folder (checked, then seeding), 20 with no
data and no peers (downloading, or queued behind the download queue); some paused, some
with labels, limits, a seed ratio goal, a file left out; a few moved in the queue.

Usage: daemon_restart_test.py --shoal PATH
"""
import argparse
import base64
import os
import signal

import harness as h
from daemon_test import Rpc, read_resume, start_daemon, wait_for

FIELDS = ["id", "hashString", "name", "status", "labels", "downloadLimit", "downloadLimited", "uploadLimit",
          "uploadLimited", "queuePosition", "percentDone", "haveValid", "wanted", "seedRatioMode", "seedRatioLimit",
          "downloadDir"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "daemon-restart")
    try:
        dl, state = run.path("dl"), run.path("state")
        src = run.path("src")
        metas = []
        for i in range(50):
            folder = os.path.join(src if i >= 30 else dl, f"t{i:02d}")
            h.write_random(os.path.join(folder, "a.bin"), 40000 + i * 977, seed=100 + i)
            h.write_random(os.path.join(folder, "b.bin"), 20000 + i * 31, seed=200 + i)
            out = run.path(f"t{i:02d}.torrent")
            h.shoal_create(run, folder, out, "--v1", "--piece-size", "16KiB")
            metas.append(base64.b64encode(open(out, "rb").read()).decode())
        rpc_port, peer_port = h.free_port(), h.free_port()
        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon.log")
        rpc = Rpc(rpc_port)
        for i, m in enumerate(metas):
            r = rpc.call("torrent-add", metainfo=m, paused=(i % 7 == 3))
            assert r["result"] == "success", r
        ids = list(range(1, 51))
        rpc.call("torrent-set", ids=ids[0:10], labels=["tv"])
        rpc.call("torrent-set", ids=ids[10:15], labels=["movies", "4k"])
        rpc.call("torrent-set", ids=[2, 12, 33], downloadLimit=250, downloadLimited=True, uploadLimit=80,
                 uploadLimited=True)
        rpc.call("torrent-set", ids=[5, 40], seedRatioMode=1, seedRatioLimit=3.5)
        rpc.call("torrent-set", ids=[35, 36], **{"files-unwanted": [1]})
        rpc.call("queue-move-top", ids=[44])
        rpc.call("queue-move-bottom", ids=[1])
        rpc.call("torrent-stop", ids=[8, 31])
        # The ones with data that were not added paused are checked and seed (paused ones
        # are checked only once started).
        expect_complete = sum(1 for i in range(30) if i % 7 != 3)
        settled = wait_for(lambda: all(t["status"] in (0, 3, 4, 6) for t in rpc.torrents(["status"]))
                           and sum(1 for t in rpc.torrents(["percentDone"]) if t["percentDone"] == 1)
                           == expect_complete, 90)
        run.check(f"before: the {expect_complete} with data not added paused are checked complete, the others "
                  "wait or download", bool(settled),
                  str([(t["id"], t["status"], t["percentDone"]) for t in rpc.torrents(["id", "status", "percentDone"])]))
        # The runtime changes are on disk once every torrent's resume file says what the RPC
        # says (labels, place in the queue, stopped or not): polled, not slept on.
        def resume_agrees():
            for t in rpc.torrents(["hashString", "labels", "queuePosition", "status"]):
                r = read_resume(state, t["hashString"])
                if r is None:
                    return False
                if ([x.decode() for x in r.get(b"labels", [])] != t["labels"] or
                        r.get(b"queue position") != t["queuePosition"] or
                        bool(r.get(b"paused")) != (t["status"] == 0)):
                    return False
            return True
        run.check("the runtime changes reach every resume file", bool(wait_for(resume_agrees, 60)))
        before = {t["hashString"]: t for t in rpc.torrents(FIELDS)}
        statuses = sorted({t["status"] for t in before.values()})
        run.check("mixed states before the kill (stopped, queued or downloading, seeding)",
                  0 in statuses and 6 in statuses and (3 in statuses or 4 in statuses), str(statuses))
        run.stop(d, sig=signal.SIGKILL)

        d = start_daemon(run, state, dl, rpc_port, peer_port, "daemon2.log")
        rpc = Rpc(rpc_port)
        back = wait_for(lambda: len(rpc.torrents(["id"])) == 50 and all(
            t["status"] in (0, 3, 4, 6) for t in rpc.torrents(["status"])), 60, step=0.1)
        first_look = {t["hashString"]: t for t in rpc.torrents(FIELDS)}
        run.check("after kill -9: all 50 back", bool(back) and len(first_look) == 50, str(len(first_look)))
        checked = [t["id"] for t in rpc.torrents(["id", "status"]) if t["status"] in (1, 2)]
        run.check("... none is checked again", not checked, str(checked))
        def differences():
            after = {t["hashString"]: t for t in rpc.torrents(FIELDS)}
            diffs = []
            for hsh, b in before.items():
                a = after.get(hsh)
                if a is None:
                    diffs.append((hsh, "missing"))
                    continue
                for k in FIELDS:
                    if k in ("status",):
                        # A torrent that was downloading may be queued behind the others again.
                        same = a[k] == b[k] or (a[k] in (3, 4) and b[k] in (3, 4))
                    else:
                        same = a[k] == b[k]
                    if not same:
                        diffs.append((b["id"], k, b[k], a[k]))
            return after, diffs
        # Polled until they agree (states settle as the queue hands out slots), to a deadline.
        wait_for(lambda: not differences()[1], 30)
        after, diffs = differences()
        run.check("... with the same ids, states, labels, limits, goals, wanted files, queue order and data",
                  not diffs, str(diffs[:12]))
        stats = rpc.call("session-stats")["arguments"]
        run.check("... and nothing downloaded again", stats["current-stats"]["downloadedBytes"] == 0, str(stats))
        run.check("the seeding ones keep their verified bytes",
                  all(after[hsh]["haveValid"] == b["haveValid"] for hsh, b in before.items() if b["percentDone"] == 1))
    finally:
        return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
