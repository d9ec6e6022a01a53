#!/usr/bin/python3
"""Port mapping (UPnP IGD and NAT-PMP) against a fake gateway (fake_gateway.py) inside a
network namespace the test makes (libnatpmp always talks to port 5351, so the gateway
gets a loopback of its own). Everything runs in that namespace.

- A seeder maps its listen port over both protocols and, on SIGINT, removes the mappings.
- A downloader with a 4 s lease maps TCP and UDP for its listen port, reports the external
  address in its JSON output, renews the mappings before they expire, completes the
  download byte for byte, and removes the mappings when it exits on its own.
- A router taking permanent leases only (UPnP error 725) gets lease 0; a NAT-PMP gateway
  that is not there is reported as an error, and SIGINT still exits promptly.
- Under --local without --upnp-url/--natpmp-gateway nothing reaches the LAN's router (a
  second namespace listening for SSDP and NAT-PMP); without --local the same seeder's
  discovery does reach it (the control).
Needs root.

Usage: portmap_test.py --shoal PATH
"""
import argparse
import json
import os
import signal
import subprocess
import time

import harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
EXTERNAL = "203.0.113.7"


def gateway_log(p):
    out = []
    for line in open(p.log, "rb").read().decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def json_lines(path):
    out = []
    for line in open(path, "rb").read().decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def upnp(log, action, port, proto=None):
    return [e for e in log if e.get("proto") == "upnp" and e.get("action") == action and
            e.get("NewExternalPort") == str(port) and (proto is None or e.get("NewProtocol") == proto)]


def natpmp(log, op, port, lifetime_zero):
    return [e for e in log if e.get("proto") == "natpmp" and e.get("op") == op and e.get("internal") == port and
            (e.get("lifetime") == 0) == lifetime_zero]


# The router namespace's listener: every datagram to NAT-PMP's port or SSDP's group.
SNIFFER = r"""
import json, select, socket, struct, sys
natpmp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
natpmp.bind(("0.0.0.0", 5351))
ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ssdp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ssdp.bind(("0.0.0.0", 1900))
ssdp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(sys.argv[1])))
print(json.dumps({"event": "ready"}), flush=True)
while True:
    for s in select.select([natpmp, ssdp], [], [], 1)[0]:
        data, src = s.recvfrom(4096)
        print(json.dumps({"event": "heard", "port": s.getsockname()[1], "from": src[0], "bytes": len(data),
                          "head": data[:32].decode("latin-1")}), flush=True)
"""


def wait_for(pred, timeout):
    return h.wait_for(pred, timeout, step=0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "portmap")
    ns = f"shoal-pm{os.getpid() % 1000}"
    subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        inns = ["ip", "netns", "exec", ns]
        os.chmod(run.dir, 0o755)

        src = run.path("seed", "data.bin")
        h.write_random(src, 3 << 20, seed=7)
        torrent = run.path("t.torrent")
        h.shoal_create(run, src, torrent)

        http_port = h.free_port()
        gw = run.spawn(inns + [h.PY, os.path.join(HERE, "fake_gateway.py"), "--http-port", str(http_port),
                               "--external", EXTERNAL, "--natpmp-lifetime", "4"], "gateway.log")
        if not wait_for(lambda: any(e.get("action") == "ready" for e in gateway_log(gw)), 10):
            run.check("fake gateway starts", False)
            raise RuntimeError("the fake gateway did not start; see " + gw.log)
        mapping = ["--upnp-url", f"http://127.0.0.1:{http_port}/rootDesc.xml", "--natpmp-gateway", "127.0.0.1"]
        common = ["--local", "--no-dht", "--no-lsd", "-v"]

        # 1. A seeder maps its port and removes the mappings on SIGINT.
        seed_port = h.free_port()
        seeder = run.spawn(inns + [run.shoal, "seed", torrent, "-d", run.path("seed"), "--port", str(seed_port),
                                   "--json-progress", *common, *mapping], "seeder.log")
        ok = wait_for(lambda: upnp(gateway_log(gw), "AddPortMapping", seed_port, "UDP") and
                      natpmp(gateway_log(gw), 1, seed_port, False), 20)
        run.check("seeder: TCP and UDP mapped over UPnP and NAT-PMP", ok and
                  upnp(gateway_log(gw), "AddPortMapping", seed_port, "TCP") and
                  natpmp(gateway_log(gw), 2, seed_port, False), json.dumps(gateway_log(gw))[-800:])

        # 2. A downloader with a 4 s lease: mapped, renewed, external address, removed at the end.
        dl_port = h.free_port()
        dl_log = run.path("download.log")
        with open(dl_log, "wb") as f:
            rc = subprocess.run(inns + [run.shoal, "download", torrent, "-d", run.path("dl"), "--port", str(dl_port),
                                        "--json-progress", "--peer", f"127.0.0.1:{seed_port}", "--seed-time", "7",
                                        "--port-mapping-lease", "4", *common, *mapping],
                                stdout=f, stderr=subprocess.STDOUT, timeout=120).returncode
        log = gateway_log(gw)
        run.check("download completes", rc == 0 and h.same_tree(run.path("seed"), run.path("dl"), ["data.bin"]),
                  f"exit {rc}")
        adds = {p: upnp(log, "AddPortMapping", dl_port, p) for p in ("TCP", "UDP")}
        run.check("UPnP: AddPortMapping for TCP and UDP on the listen port, lease 4 s",
                  all(adds[p] and all(e.get("NewInternalPort") == str(dl_port) and e.get("NewLeaseDuration") == "4" and
                                      e.get("NewInternalClient") == "127.0.0.1" for e in adds[p]) for p in adds),
                  json.dumps(adds))
        run.check("UPnP: external address asked", any(e.get("action") == "GetExternalIPAddress" for e in log))
        run.check("UPnP: mappings renewed before the lease ends (>= 3 adds each in 7+ s)",
                  all(len(adds[p]) >= 3 for p in adds), {p: len(v) for p, v in adds.items()})
        nat = {op: natpmp(log, op, dl_port, False) for op in (1, 2)}
        run.check("NAT-PMP: UDP (1) and TCP (2) mapped, lifetime 4 asked",
                  all(nat[op] and all(e.get("lifetime") == 4 and e.get("external") == dl_port for e in nat[op])
                      for op in nat), json.dumps(nat))
        run.check("NAT-PMP: public address asked", any(e.get("proto") == "natpmp" and e.get("op") == 0 for e in log))
        run.check("NAT-PMP: renewed at half the granted 4 s lifetime (>= 3 requests each)",
                  all(len(nat[op]) >= 3 for op in nat), {op: len(v) for op, v in nat.items()})
        run.check("download: mappings removed on exit (UPnP DeletePortMapping TCP+UDP, NAT-PMP lifetime 0)",
                  upnp(log, "DeletePortMapping", dl_port, "TCP") and upnp(log, "DeletePortMapping", dl_port, "UDP") and
                  natpmp(log, 1, dl_port, True) and natpmp(log, 2, dl_port, True))
        lines = json_lines(dl_log)
        events = [e for e in lines if e.get("event") == "port_mapping"]
        mapped = [e for e in events if e.get("protocols") == "upnp+natpmp"]
        run.check("JSON: port_mapping events report both protocols and the external address",
                  mapped and all(e["external_address"] == EXTERNAL for e in mapped) and
                  mapped[-1]["upnp"]["tcp_port"] == dl_port and mapped[-1]["natpmp"]["udp_port"] == dl_port,
                  json.dumps(events[-2:]))
        run.check("JSON: renewals counted",
                  any(e["upnp"]["refreshes"] >= 1 and e["natpmp"]["refreshes"] >= 1 for e in events))
        summary = next((e for e in reversed(lines) if e.get("event") == "summary"), None)
        run.check("JSON summary carries the port mapping status",
                  summary is not None and "port_mapping" in summary and
                  summary["port_mapping"]["external_address"] == EXTERNAL, json.dumps(summary))
        text = open(dl_log, "rb").read().decode("utf-8", "replace")
        run.check("--verbose logs the mapping", "port mapping: NAT-PMP mapped" in text and "port mapping: UPnP" in text)

        # 3. SIGINT on the seeder: its mappings are removed before it exits.
        run.stop(seeder, signal.SIGINT, wait=30)
        run.check("seeder: exits 0 after SIGINT", seeder.returncode == 0, f"exit {seeder.returncode}")
        log = gateway_log(gw)
        run.check("seeder: SIGINT removes its mappings",
                  upnp(log, "DeletePortMapping", seed_port, "TCP") and upnp(log, "DeletePortMapping", seed_port, "UDP")
                  and natpmp(log, 1, seed_port, True) and natpmp(log, 2, seed_port, True),
                  f"exit {seeder.returncode}")

        # 4. A router that takes permanent leases only (UPnP 725) and a NAT-PMP gateway that
        # is not there: UPnP maps with lease 0, NAT-PMP reports its error, shutdown is prompt.
        http2 = h.free_port()
        gw2 = run.spawn(inns + [h.PY, os.path.join(HERE, "fake_gateway.py"), "--bind", "127.0.0.2", "--http-port",
                                str(http2), "--permanent-only"], "gateway2.log")
        if not wait_for(lambda: any(e.get("action") == "ready" for e in gateway_log(gw2)), 10):
            raise RuntimeError("the second fake gateway did not start; see " + gw2.log)
        odd_port = h.free_port()
        odd = run.spawn(inns + [run.shoal, "seed", torrent, "-d", run.path("seed"), "--port", str(odd_port),
                                "--json-progress", *common, "--upnp-url", f"http://127.0.0.2:{http2}/rootDesc.xml",
                                "--natpmp-gateway", "127.0.0.3"], "odd.log")

        def odd_state():
            ev = [e for e in json_lines(odd.log) if e.get("event") == "port_mapping"]
            return ev[-1] if ev else None

        ok = wait_for(lambda: (odd_state() or {}).get("upnp", {}).get("mapped") and
                      (odd_state() or {}).get("natpmp", {}).get("error"), 20)
        st = odd_state() or {}
        log2 = gateway_log(gw2)
        leases = [e.get("NewLeaseDuration") for e in log2 if e.get("action") == "AddPortMapping"]
        run.check("UPnP 725: a lease is tried, then a permanent mapping", ok and leases[:1] == ["3600"] and
                  "0" in leases and st["upnp"]["lease"] == 0 and st["protocols"] == "upnp", f"{leases} {st}")
        run.check("NAT-PMP gateway absent: not mapped, the error reported",
                  ok and not st["natpmp"]["mapped"] and st["natpmp"]["error"], json.dumps(st.get("natpmp")))
        t0 = time.time()
        run.stop(odd, signal.SIGINT, wait=30)
        run.check("with a dead NAT-PMP gateway, SIGINT still exits promptly (< 8 s) and cleanly",
                  time.time() - t0 < 8 and odd.returncode == 0, f"{time.time() - t0:.1f} s, exit {odd.returncode}")
        run.check("the permanent UPnP mappings are removed on exit",
                  upnp(gateway_log(gw2), "DeletePortMapping", odd_port, "TCP") and
                  upnp(gateway_log(gw2), "DeletePortMapping", odd_port, "UDP"))

        # 5. --local without gateway flags: nothing is asked of anyone. A second namespace
        # plays the LAN's router (veth, the default route through it) and listens where a
        # request would go: SSDP's multicast group on 1900 and NAT-PMP's 5351 at the
        # gateway. The same seeder without --local is the control that shows it would hear.
        rt = ns + "r"
        subprocess.run(["ip", "netns", "del", rt], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "add", rt], check=True)
        va, vb = f"pm{os.getpid() % 1000}a", f"pm{os.getpid() % 1000}b"
        for cmd in (["ip", "link", "add", va, "netns", ns, "type", "veth", "peer", "name", vb, "netns", rt],
                    ["ip", "-n", ns, "addr", "add", "10.77.0.2/24", "dev", va], ["ip", "-n", ns, "link", "set", va, "up"],
                    ["ip", "-n", rt, "addr", "add", "10.77.0.1/24", "dev", vb], ["ip", "-n", rt, "link", "set", vb, "up"],
                    ["ip", "-n", rt, "link", "set", "lo", "up"],
                    ["ip", "-n", ns, "route", "add", "default", "via", "10.77.0.1"]):
            subprocess.run(cmd, check=True)
        sniffer = run.spawn(["ip", "netns", "exec", rt, h.PY, "-c", SNIFFER, "10.77.0.1"], "router.log")
        if not wait_for(lambda: any(e.get("event") == "ready" for e in gateway_log(sniffer)), 10):
            raise RuntimeError("the router's listener did not start; see " + sniffer.log)
        heard = lambda: [e for e in gateway_log(sniffer) if e.get("event") == "heard"]  # noqa: E731
        # The control first: the same seeder without --local, timed to its first request.
        env = {k: v for k, v in os.environ.items() if k != "SHOAL_LOCAL"}
        t0 = time.time()
        control = run.spawn(inns + [run.shoal, "seed", torrent, "-d", run.path("seed"), "--port", str(h.free_port()),
                                    "--json-progress", "--no-dht", "--no-lsd", "-v"], "control.log", env=env)
        got = wait_for(lambda: heard(), 30)
        latency = time.time() - t0
        run.stop(control, signal.SIGINT)
        run.check(f"control: without --local the same seeder's discovery reaches the router's listener "
                  f"({latency:.1f} s)", bool(got), json.dumps(heard()))
        time.sleep(1)  # the control's last datagrams (its removals on exit) land before the count
        before = len(heard())
        # Then --local: watched for three times as long as the control needed, 5 s at least.
        quiet_port = h.free_port()
        quiet = run.spawn(inns + [run.shoal, "seed", torrent, "-d", run.path("seed"), "--port", str(quiet_port),
                                  "--json-progress", *common], "quiet.log")
        time.sleep(max(5.0, 3 * latency))
        quiet_alive = quiet.poll() is None
        run.stop(quiet, signal.SIGINT)
        time.sleep(0.5)
        late = heard()[before:]
        run.check("--local without --upnp-url/--natpmp-gateway: the seeder ran and no request reached the router "
                  "(SSDP or NAT-PMP)", quiet_alive and not late, json.dumps(late))
        run.check("--local without gateway flags: no port_mapping in the JSON output",
                  not any("port_mapping" in e for e in json_lines(quiet.log)))
    finally:
        rc = run.finish()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", ns + "r"], stderr=subprocess.DEVNULL)
    return rc


if __name__ == "__main__":
    h.main_guard(main)
