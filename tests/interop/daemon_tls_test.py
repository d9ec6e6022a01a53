#!/usr/bin/python3
"""HTTPS on the daemon's RPC port. A client in a network namespace (another machine, as far
as the daemon can tell: its address is not loopback) reaches a daemon bound to 0.0.0.0
with a password set:

- on first start the daemon makes a certificate in STATE/tls/ (the key readable by its
  owner only) and logs its SHA-256 fingerprint, which matches the file;
- over HTTPS, verified against that certificate, the remote client logs in and drives the
  RPC; over plain HTTP it is refused with 403 and told to use https://, and a session-set
  sent that way changes nothing;
- loopback clients keep plain HTTP (transmission-remote speaks no TLS) and may use HTTPS;
- a restart keeps the certificate; the user's own certificate and key are used when set,
  and a key that does not match its certificate stops the daemon with a clear error.
Needs root (ip netns).

Usage: daemon_tls_test.py --shoal PATH
"""
import argparse
import base64
import hashlib
import json
import os
import re
import ssl
import stat
import subprocess

import harness as h

# Runs inside the namespace: one RPC call, plain or over TLS, printed as JSON.
CLIENT = r"""
import base64, http.client, json, socket, ssl, sys
host, port, mode, cafile, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
auth = "Basic " + base64.b64encode(b"me:s3cret pass").decode()
if mode == "tls":
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.sock = ctx.wrap_socket(socket.create_connection((host, port), timeout=20), server_hostname="localhost")
else:
    conn = http.client.HTTPConnection(host, port, timeout=20)
sid = ""
for _ in range(2):
    conn.request("POST", "/transmission/rpc", body=body,
                 headers={"Authorization": auth, "X-Transmission-Session-Id": sid, "Host": host})
    r = conn.getresponse()
    text = r.read().decode()
    if r.status == 409:
        sid = r.getheader("X-Transmission-Session-Id") or ""
        continue
    break
print(json.dumps({"status": r.status, "body": text}))
"""


class Namespace:
    """A namespace joined to this one by a veth pair: 10.78.x.1 here, 10.78.x.2 there."""

    def __init__(self):
        n = os.getpid() % 200
        self.name, self.here, self.there = f"shoal-tls{n}", f"10.78.{n}.1", f"10.78.{n}.2"
        self.va, self.vb = f"tls{n}a", f"tls{n}b"
        self.close()
        for cmd in (["ip", "netns", "add", self.name],
                    ["ip", "link", "add", self.va, "type", "veth", "peer", "name", self.vb, "netns", self.name],
                    ["ip", "addr", "add", f"{self.here}/24", "dev", self.va], ["ip", "link", "set", self.va, "up"],
                    ["ip", "-n", self.name, "addr", "add", f"{self.there}/24", "dev", self.vb],
                    ["ip", "-n", self.name, "link", "set", self.vb, "up"],
                    ["ip", "-n", self.name, "link", "set", "lo", "up"]):
            subprocess.run(cmd, check=True)

    def close(self):
        subprocess.run(["ip", "link", "del", self.va], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)


def fingerprint(pem_path):
    der = ssl.PEM_cert_to_DER_cert(open(pem_path).read())
    d = hashlib.sha256(der).hexdigest().upper()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    if not h.require_root("ip netns"):
        return 1
    run = h.Run(args.shoal, "daemon-tls")
    ns = None
    try:
        ns = Namespace()
        os.chmod(run.dir, 0o755)
        state, dl = run.path("state"), run.path("dl")
        os.makedirs(state)
        with open(os.path.join(state, "settings.json"), "w") as f:
            json.dump({"rpc-host-whitelist": [ns.here]}, f)
        r = subprocess.run([run.shoal, "daemon", "--state-dir", state, "--set-password", "--rpc-username", "me"],
                           input="s3cret pass\n", capture_output=True, text=True, timeout=60)
        run.check("--set-password saves the password", r.returncode == 0, r.stderr)
        port = h.free_port()
        argv = [run.shoal, "daemon", "--state-dir", state, "--download-dir", dl, "--rpc-port", str(port),
                "--rpc-bind", "0.0.0.0", "--port", str(h.free_port()), "--local", "--no-dht", "--no-lsd"]
        d = run.spawn(argv, "daemon.log")
        h.wait_listening(port)
        cert, key = os.path.join(state, "tls", "cert.pem"), os.path.join(state, "tls", "key.pem")
        run.check("first start: a certificate and key in STATE/tls/, the key readable by its owner only",
                  os.path.exists(cert) and os.path.exists(key) and stat.S_IMODE(os.stat(key).st_mode) == 0o600,
                  str(os.listdir(os.path.join(state, "tls")) if os.path.isdir(os.path.join(state, "tls")) else []))
        log = open(d.log).read()
        fp = fingerprint(cert) if os.path.exists(cert) else "?"
        run.check("the daemon logs the certificate's SHA-256 fingerprint", fp in log, log[-400:])

        def remote(mode, body, cafile=cert):
            r = subprocess.run(["ip", "netns", "exec", ns.name, h.PY, "-c", CLIENT, ns.here, str(port), mode, cafile,
                                body], capture_output=True, text=True, timeout=60)
            try:
                return json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                return {"status": None, "body": r.stdout + r.stderr}

        got = remote("tls", json.dumps({"method": "session-get", "arguments": {"fields": ["download-dir"]}}))
        run.check("remote over HTTPS (certificate verified): logged in, session-get answers",
                  got["status"] == 200 and json.loads(got["body"]).get("result") == "success", str(got)[:400])
        got = remote("tls", json.dumps({"method": "session-set", "arguments": {"speed-limit-down": 321}}))
        run.check("remote over HTTPS: session-set works", got["status"] == 200, str(got)[:300])
        got = remote("plain", json.dumps({"method": "session-set", "arguments": {"speed-limit-down": 999}}))
        run.check("remote over plain HTTP: 403, told to use https:// on the same port",
                  got["status"] == 403 and f"https://HOST:{port}/" in got["body"] and fp in got["body"], str(got)[:400])

        # Loopback: plain HTTP with the password, and HTTPS.
        auth = {"Authorization": "Basic " + base64.b64encode(b"me:s3cret pass").decode()}
        from daemon_test import Rpc
        rpc = Rpc(port)
        code, headers, _ = rpc.raw("{}", auth)
        sid = headers.get("X-Transmission-Session-Id", "")
        code, _, text = rpc.raw(json.dumps({"method": "session-get", "arguments": {"fields": ["speed-limit-down"]}}),
                                {**auth, "X-Transmission-Session-Id": sid})
        limit = json.loads(text).get("arguments", {}).get("speed-limit-down") if code == 200 else None
        run.check("loopback over plain HTTP still works", code == 200, f"{code} {text[:200]}")
        run.check("the plain-HTTP session-set changed nothing (the HTTPS one did)", limit == 321, str(limit))
        ctx = ssl.create_default_context(cafile=cert)
        import http.client
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
        c.request("POST", "/transmission/rpc", body="{}", headers=auth)
        resp = c.getresponse()
        resp.read()
        run.check("loopback over HTTPS (certificate names 127.0.0.1)", resp.status == 409, str(resp.status))
        run.stop(d)

        # A restart keeps the certificate.
        d = run.spawn(argv, "daemon2.log")
        h.wait_listening(port)
        run.check("a restart keeps the certificate", fingerprint(cert) == fp and fp in open(d.log).read())
        run.stop(d)

        # The user's own certificate; a key that does not match it.
        own_cert, own_key, other_key = run.path("own.pem"), run.path("own.key"), run.path("other.key")
        for k in (own_key, other_key):
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k],
                           check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", own_key, "-out", own_cert, "-days", "30", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        settings = json.load(open(os.path.join(state, "settings.json")))
        settings.update({"rpc-tls-cert": own_cert, "rpc-tls-key": own_key})
        json.dump(settings, open(os.path.join(state, "settings.json"), "w"))
        d = run.spawn(argv, "daemon3.log")
        h.wait_listening(port)
        got = remote("tls", json.dumps({"method": "session-get"}), cafile=own_cert)
        run.check("the user's certificate is the one served (verified against it, logged)",
                  got["status"] == 200 and fingerprint(own_cert) in open(d.log).read(), str(got)[:300])
        run.stop(d)
        settings["rpc-tls-key"] = other_key
        json.dump(settings, open(os.path.join(state, "settings.json"), "w"))
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        run.check("a key that does not match its certificate: the daemon stops and says so",
                  r.returncode != 0 and re.search(r"does not match", r.stderr) is not None, r.stderr[-300:])
    finally:
        if ns:
            ns.close()
        code = run.finish()
    return code


if __name__ == "__main__":
    h.main_guard(main)
