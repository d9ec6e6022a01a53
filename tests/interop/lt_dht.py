#!/usr/bin/python3
"""libtorrent's DHT for interop tests: a plain node, or one BEP 44 put or get.

Usage:
  lt_dht.py node --port N --bootstrap HOST:PORT [--seconds S]
  lt_dht.py put-immutable VALUE --port N --bootstrap HOST:PORT
  lt_dht.py put-mutable VALUE --seed HEX --salt S --port N --bootstrap HOST:PORT
  lt_dht.py get-immutable TARGET --port N --bootstrap HOST:PORT
  lt_dht.py get-mutable PUBKEY --salt S --port N --bootstrap HOST:PORT

Prints JSON lines; the last one is the result. Exit 0 on success, 1 on failure or timeout.
A mutable item's key comes from a 32-byte ed25519 seed (hex), the same seed shoal's
`dht put --key-seed` takes, so both sides sign with the same key.
"""
import argparse
import hashlib
import json
import sys
import time

import libtorrent as lt

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from lt_peer import dht_settings  # noqa: E402


def keypair(seed_hex):
    """libtorrent's key format: the public key and SHA-512(seed) with the scalar clamped."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    seed = bytes.fromhex(seed_hex)
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return pub, bytes(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["node", "put-immutable", "put-mutable", "get-immutable", "get-mutable"])
    ap.add_argument("arg", nargs="?")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bootstrap", action="append", default=[])
    ap.add_argument("--seed", default="")
    ap.add_argument("--salt", default="")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()

    settings = {
        "listen_interfaces": f"127.0.0.1:{args.port}",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.error_notification
        | lt.alert.category_t.dht_operation_notification,
    }
    settings.update(dht_settings(args.bootstrap))
    ses = lt.session(settings)
    deadline = time.time() + args.seconds

    # Wait for a routing table.
    while time.time() < deadline:
        ses.post_dht_stats()
        nodes = 0
        for a in ses.pop_alerts():
            if isinstance(a, lt.dht_stats_alert):
                nodes = sum(b["num_nodes"] for b in a.routing_table) if a.routing_table else 0
        if nodes > 0:
            break
        time.sleep(0.2)
    print(json.dumps({"event": "ready", "nodes": nodes}), flush=True)

    if args.mode == "node":
        while time.time() < deadline:
            ses.pop_alerts()
            time.sleep(0.5)
        return 0

    if args.mode == "put-immutable":
        target = ses.dht_put_immutable_item(args.arg.encode())
        print(json.dumps({"event": "putting", "target": str(target)}), flush=True)
    elif args.mode == "put-mutable":
        pub, sec = keypair(args.seed)
        ses.dht_put_mutable_item(sec, pub, args.arg.encode(), args.salt.encode())
        print(json.dumps({"event": "putting", "public_key": pub.hex()}), flush=True)
    elif args.mode == "get-immutable":
        ses.dht_get_immutable_item(lt.sha1_hash(bytes.fromhex(args.arg)))
    else:
        ses.dht_get_mutable_item(bytes.fromhex(args.arg), args.salt.encode())

    while time.time() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.dht_put_alert):
                print(json.dumps({"event": "put", "success": a.num_success, "target": str(a.target),
                                  "seq": a.seq}), flush=True)
                return 0 if a.num_success > 0 else 1
            if isinstance(a, lt.dht_immutable_item_alert):
                print(json.dumps({"event": "item", "target": str(a.target), "value": _as_text(a.item)}), flush=True)
                return 0
            if isinstance(a, lt.dht_mutable_item_alert):
                if not a.authoritative and time.time() < deadline - 1:
                    # Keep listening: an authoritative answer follows once the lookup ends.
                    continue
                print(json.dumps({"event": "item", "seq": a.seq, "value": _as_text(a.item),
                                  "authoritative": a.authoritative}), flush=True)
                return 0 if _as_text(a.item) is not None else 1
        time.sleep(0.1)
    print(json.dumps({"event": "timeout"}), flush=True)
    return 1


def _as_text(item):
    """The item's value when it is a string (what these tests store). The binding hands
    items over as {"key": ..., "value": ...}."""
    if isinstance(item, dict):
        item = item.get("value")
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    if isinstance(item, str):
        return item
    return None


if __name__ == "__main__":
    sys.exit(main())
