#!/usr/bin/python3
"""A libtorrent peer for interop tests: seeds or downloads one torrent on loopback.

Usage:
  lt_peer.py seed TORRENT DIR --port N [--peer HOST:PORT ...] [--seconds S]
    lt_peer.py download TORRENT|MAGNET DIR --port N [--peer HOST:PORT ...] [--seconds S]

Prints one JSON line per second with its state, and exits 0 when a download completes
(verified), 1 on timeout or error. A seeder runs until --seconds pass or it is killed.
Everything stays on loopback: no LSD, UPnP or NAT-PMP, and no DHT unless --dht-bootstrap
points it at loopback nodes.
"""
import argparse
import json
import signal
import sys
import time

import libtorrent as lt

# peer_info's utp_socket flag (bit 17), which the Python binding does not name.
UTP_SOCKET = getattr(lt.peer_info, "utp_socket", 1 << 17)


# What libtorrent's DHT needs to work among loopback nodes (its defaults reject them).
def dht_settings(bootstrap):
    return {
        "enable_dht": True,
        "dht_bootstrap_nodes": ",".join(bootstrap),
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_extended_routing_table": False,
    }


def make_session(port, extra=None, listen="127.0.0.1"):
    host = f"[{listen}]" if ":" in listen else listen
    settings = {
        "listen_interfaces": f"{host}:{port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
        # Loopback tests: no rate caps, plenty of slots.
        "unchoke_slots_limit": 20,
        "connections_limit": 200,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
    }
    if extra:
        settings.update(extra)
    return lt.session(settings)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "download"])
    ap.add_argument("torrent")
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--utp", action="store_true", help="allow uTP (default: TCP only)")
    ap.add_argument("--linger", type=float, default=0, help="seconds to keep seeding after completing")
    ap.add_argument("--max-upload", type=int, default=0, help="upload limit in bytes/s (0: none)")
    ap.add_argument("--dht-bootstrap", action="append", default=[], help="enable the DHT through this HOST:PORT")
    ap.add_argument("--listen", default="127.0.0.1", help="address to listen on (e.g. ::1)")
    ap.add_argument("--transport", choices=["tcp", "utp", "both"], help="overrides --utp: which transports to use")
    ap.add_argument("--encryption", choices=["enabled", "required", "disabled"], default="enabled",
                    help="MSE/PE: libtorrent's default (enabled), forced RC4 both ways, or off")
    ap.add_argument("--log-alerts", action="store_true",
                    help="print libtorrent's peer and connection alerts (why a peer was dropped)")
    args = ap.parse_args()

    extra = {} if args.utp else {"enable_outgoing_utp": False, "enable_incoming_utp": False}
    if args.max_upload:
        extra["upload_rate_limit"] = args.max_upload
    if args.dht_bootstrap:
        extra.update(dht_settings(args.dht_bootstrap))
    if args.transport == "utp":
        extra.update({"enable_outgoing_utp": True, "enable_incoming_utp": True,
                      "enable_outgoing_tcp": False, "enable_incoming_tcp": False})
    elif args.transport == "both":
        extra.update({"enable_outgoing_utp": True, "enable_incoming_utp": True})
    if args.encryption == "required":
        # forced both ways, RC4 only
        extra.update({"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2, "prefer_rc4": True})
    elif args.encryption == "disabled":
        extra.update({"out_enc_policy": 2, "in_enc_policy": 2})
    if args.log_alerts:
        c = lt.alert.category_t
        extra["alert_mask"] = (c.error_notification | c.status_notification | c.peer_notification
                               | c.connect_notification | c.peer_log_notification)
    ses = make_session(args.port, extra, args.listen)
    if args.torrent.startswith("magnet:"):
        # Metadata comes from the peers (BEP 9).
        atp = lt.parse_magnet_uri(args.torrent)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.dir
    if args.mode == "seed":
        atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    for p in args.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host.strip("[]"), int(port)))

    deadline = time.time() + args.seconds
    last_print = 0
    totals = {}  # "ip:port" -> {"client", "down", "up"}: the most seen per connection

    def record_peers():
        for pi in h.get_peer_info():
            key = f"{pi.ip[0]}:{pi.ip[1]}"
            client = pi.client.decode("utf-8", "replace") if isinstance(pi.client, bytes) else pi.client
            pid = pi.pid.to_bytes()[:8].decode("latin-1")
            t = totals.setdefault(key, {"client": client, "peer_id": pid, "down": 0, "up": 0})
            # Recorded before the handshake the id is still zeros: keep the first real one.
            if client and not t["client"]:
                t["client"] = client
            if pid.strip("\0") and not t["peer_id"].strip("\0"):
                t["peer_id"] = pid
            t["rc4"] = bool(pi.flags & lt.peer_info.rc4_encrypted) or t.get("rc4", False)
            t["plaintext_encrypted"] = bool(pi.flags & lt.peer_info.plaintext_encrypted) or t.get("plaintext_encrypted", False)
            t["utp"] = bool(pi.flags & UTP_SOCKET) or t.get("utp", False)
            t["down"] = max(t["down"], pi.total_download)
            t["up"] = max(t["up"], pi.total_upload)

    def report_peers():
        print(json.dumps({"peer_totals": totals}), flush=True)

    # A seeder is stopped with SIGTERM: say whom it saw first.
    def on_term(signum, frame):
        record_peers()
        report_peers()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)

    while time.time() < deadline:
        if args.log_alerts:
            for a in ses.pop_alerts():
                print(json.dumps({"alert": a.what(), "message": a.message()}), flush=True)
        record_peers()
        st = h.status()
        if time.time() - last_print >= 1:
            print(json.dumps({"state": str(st.state), "progress": st.progress, "peers": st.num_peers,
                              "down": st.download_payload_rate, "up": st.upload_payload_rate,
                              "total_up": st.all_time_upload, "error": st.errc.message() if st.errc.value() else ""}),
                  flush=True)
            if totals:
                report_peers()
            last_print = time.time()
        if st.errc.value():
            print(json.dumps({"error": st.errc.message()}), flush=True)
            return 1
        if args.mode == "download" and st.is_seeding:
            record_peers()
            report_peers()
            print(json.dumps({"done": True, "total_download": st.total_payload_download}), flush=True)
            # Stay a while as a seed so that the rest of a swarm can finish.
            linger = time.time() + args.linger
            while time.time() < min(linger, deadline):
                time.sleep(0.2)
            return 0
        # Keep trying the given peers: the other side may start later.
        if st.num_peers == 0:
            for p in args.peer:
                host, port = p.rsplit(":", 1)
                h.connect_peer((host.strip("[]"), int(port)))
        time.sleep(0.1)
    report_peers()
    return 0 if args.mode == "seed" else 1


if __name__ == "__main__":
    sys.exit(main())
