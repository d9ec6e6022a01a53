#!/usr/bin/python3
"""Transports with libtorrent, each download checked byte for byte:
- MSE/PE encryption required on both sides, both directions (libtorrent reports RC4);
  a plaintext-only peer refused under "required"; "preferred" falls back to plaintext;
- IPv6: downloads over ::1 both ways;
- --bind 127.0.0.2: libtorrent sees shoal's connection come from 127.0.0.2.

Usage: transport_test.py --shoal PATH [--size MiB]
"""
import argparse
import json
import os
import time

import harness as h


def lt_totals(lines):
    out = {}
    for line in lines:
        out.update(line.get("peer_totals", {}))
    return out


def shoal_log_lines(run, log):
    return open(run.path(log), "rb").read().decode("utf-8", "replace").splitlines()


def transfer(run, torrent, src, name, label, seeder, shoal_args=(), lt_args=(), listen="127.0.0.1",
             expect_ok=True, timeout=120):
    """seeder: 'shoal' or 'lt'. Returns (ok, libtorrent's peer totals, shoal's log lines)."""
    dst = run.path("dst-" + label)
    os.makedirs(dst)
    sport, lport = h.free_port(), h.free_port()
    host = f"[{listen}]" if ":" in listen else listen
    slog, llog = f"{label}-shoal.log", f"{label}-lt.log"
    lt_extra = ["--listen", listen, *lt_args]
    if seeder == "shoal":
        sp = h.shoal_seed(run, torrent, src, sport, slog, "-v", *shoal_args)
        h.wait_listening(sport, host=listen)
        lp = h.lt_peer(run, "download", torrent, dst, lport, llog, peers=[f"{host}:{sport}"],
                       seconds=timeout, extra=lt_extra)
        rc, lines = h.lt_result(lp, timeout=timeout + 30)
        run.stop(sp)
    else:
        sp = h.lt_peer(run, "seed", torrent, src, sport, llog, seconds=timeout + 30, extra=lt_extra)
        h.wait_listening(sport, host=listen)
        # Until its torrent is checked libtorrent resets connections for it.
        deadline = time.time() + 20
        while time.time() < deadline and '"state": "seeding"' not in open(sp.log, "rb").read().decode():
            time.sleep(0.1)
        rc = h.shoal_download(run, torrent, dst, lport, slog, "-v", "--seed-time", "0", "--peer",
                              f"{host}:{sport}", "--stop-timeout", "20" if not expect_ok else "60", *shoal_args,
                              timeout=timeout)
        run.stop(sp)
        lines = [json.loads(l) for l in open(sp.log, "rb").read().decode().splitlines() if l.startswith("{")]
    same = h.same_tree(src, dst, [name])
    ok = rc == 0 and same
    if expect_ok:
        run.check(f"{label}: download completes, bytes identical", ok, f"exit {rc}, identical {same}")
    return ok, lt_totals(lines), shoal_log_lines(run, slog)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--size", type=int, default=16, help="MiB of test data")
    args = ap.parse_args()
    run = h.Run(args.shoal, "transport")
    try:
        name = "payload.bin"
        src = run.path("src")
        h.write_random(os.path.join(src, name), args.size << 20)
        t = run.path("t.torrent")
        h.shoal_create(run, os.path.join(src, name), t, "--v1")

        # Encryption required on both sides, both ways.
        for seeder in ("shoal", "lt"):
            label = f"rc4-{seeder}-seeds"
            ok, totals, log = transfer(run, t, src, name, label, seeder, ["--encryption", "required"],
                                       ["--encryption", "required"])
            shoal_peers = [v for v in totals.values() if v.get("peer_id", "").startswith("-SH")]
            run.check(f"{label}: libtorrent saw an RC4 connection to shoal",
                      bool(shoal_peers) and all(v["rc4"] for v in shoal_peers), json.dumps(totals))
            run.check(f"{label}: shoal logs the connection as rc4",
                      any("connected (" in l and ", rc4)" in l for l in log), "\n".join(log[-5:]))
            run.check(f"{label}: shoal never connected in plaintext",
                      not any("connected (" in l and "plaintext)" in l for l in log))

        # Required vs a peer that only speaks plaintext: no connection, a clear reason.
        ok, totals, log = transfer(run, t, src, name, "required-vs-plain", "lt", ["--encryption", "required"],
                                   ["--encryption", "disabled"], expect_ok=False, timeout=40)
        run.check("required vs plaintext-only libtorrent: nothing downloaded", not ok)
        run.check("required vs plaintext-only libtorrent: shoal says why",
                  any("encryption handshake" in l for l in log), "\n".join(log[-8:]))
        ok, totals, log = transfer(run, t, src, name, "required-seed-vs-plain", "shoal",
                                   ["--encryption", "required"], ["--encryption", "disabled"], expect_ok=False,
                                   timeout=25)
        run.check("shoal seeding with required refuses a plaintext libtorrent", not ok)
        run.check("... and logs the refusal",
                  any("plaintext handshake refused" in l for l in log), "\n".join(log[-8:]))

        # Preferred (the default) against a plaintext-only peer: falls back and completes.
        ok, totals, log = transfer(run, t, src, name, "preferred-vs-plain", "lt", [], ["--encryption", "disabled"])
        run.check("preferred vs plaintext-only libtorrent: connected in plaintext",
                  any("connected (" in l and "plaintext)" in l for l in log), "\n".join(log[-8:]))
        # Preferred against libtorrent's default: the MSE handshake is done (libtorrent, offered
        # both, picks plaintext after it), no fallback to a second connection.
        ok, totals, log = transfer(run, t, src, name, "preferred-vs-default", "lt")
        run.check("preferred vs libtorrent's default: MSE handshake, no plaintext retry",
                  not any("retrying in plaintext" in l for l in log) and bool(totals) and
                  all(v["rc4"] or v["plaintext_encrypted"] for v in totals.values()),
                  json.dumps(totals) + "\n" + "\n".join(log[-8:]))
        # IPv6 over ::1, both ways.
        for seeder in ("shoal", "lt"):
            label = f"ipv6-{seeder}-seeds"
            ok, totals, log = transfer(run, t, src, name, label, seeder, [], [], listen="::1")
            run.check(f"{label}: the peer connection is IPv6",
                      any(k.startswith("::1") or k.startswith("[::1]") for k in totals) and
                      any("peer ::1:" in l and "connected (" in l for l in log),
                      json.dumps(totals) + "\n" + "\n".join(log[-5:]))

        # --bind 127.0.0.2: the connection libtorrent sees comes from 127.0.0.2.
        ok, totals, log = transfer(run, t, src, name, "bind", "lt", ["--bind", "127.0.0.2"], [])
        run.check("--bind 127.0.0.2: libtorrent saw shoal at 127.0.0.2 only",
                  bool(totals) and all(k.startswith("127.0.0.2:") for k in totals), json.dumps(totals))
    finally:
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
