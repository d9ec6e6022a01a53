#!/usr/bin/python3
"""A home router's port mapping services, for tests: a UPnP IGD (an HTTP server with
rootDesc.xml and the WANIPConnection SOAP actions AddPortMapping, DeletePortMapping and
GetExternalIPAddress; no SSDP, clients are given the URL) and a NAT-PMP responder (RFC 6886
opcodes 0, 1 and 2 on UDP port 5351, which libnatpmp cannot change: run it in a network
namespace). Every request is printed as one JSON line on stdout.

Usage: fake_gateway.py --bind ADDR --http-port PORT [--external IP] [--natpmp-lifetime S]
                       [--permanent-only]
"""
import argparse
import http.server
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time

SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:1"
START = time.time()
lock = threading.Lock()


def record(**kw):
    kw["t"] = round(time.time() - START, 3)
    with lock:
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()


ROOT_DESC = f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>shoal test gateway</friendlyName>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service>
<serviceType>{SERVICE}</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
<SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>
"""


def soap(action, body=""):
    return (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            f's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            f'<u:{action}Response xmlns:u="{SERVICE}">{body}</u:{action}Response></s:Body></s:Envelope>\r\n')


def arg(xml, name):
    m = re.search(rf"<{name}>([^<]*)</{name}>", xml)
    return m.group(1) if m else None


# What routers that take permanent leases only answer to a lease (UPnP error 725).
FAULT_725 = ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
             's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>'
             '<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>'
             '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>725</errorCode>'
             '<errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError>'
             '</detail></s:Fault></s:Body></s:Envelope>\r\n')


class Igd(http.server.BaseHTTPRequestHandler):
    external = "203.0.113.7"
    permanent_only = False

    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        record(proto="upnp", action="GET", path=self.path)
        if self.path == "/rootDesc.xml":
            self.reply(200, ROOT_DESC)
        else:
            self.reply(404, "")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8", "replace")
        action = (self.headers.get("SOAPAction", "").strip('"').split("#") + [""])[1]
        fields = {k: arg(body, k) for k in ("NewExternalPort", "NewProtocol", "NewInternalPort", "NewInternalClient",
                                            "NewLeaseDuration", "NewPortMappingDescription")}
        record(proto="upnp", action=action, **{k: v for k, v in fields.items() if v is not None})
        if action == "GetExternalIPAddress":
            self.reply(200, soap(action, f"<NewExternalIPAddress>{self.external}</NewExternalIPAddress>"))
        elif action == "AddPortMapping" and self.permanent_only and fields["NewLeaseDuration"] != "0":
            self.reply(500, FAULT_725)
        elif action in ("AddPortMapping", "DeletePortMapping"):
            self.reply(200, soap(action))
        else:
            self.reply(500, "")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def natpmp(s, external, lifetime):
    ext = socket.inet_aton(external)
    while True:
        data, src = s.recvfrom(1100)
        epoch = int(time.time() - START)
        if len(data) >= 2 and data[0] == 0 and data[1] == 0:
            record(proto="natpmp", op=0)
            s.sendto(struct.pack(">BBHI", 0, 128, 0, epoch) + ext, src)
        elif len(data) >= 12 and data[0] == 0 and data[1] in (1, 2):
            _, op, _, internal, suggested, want = struct.unpack(">BBHHHI", data[:12])
            record(proto="natpmp", op=op, internal=internal, external=suggested, lifetime=want)
            granted = 0 if want == 0 else min(want, lifetime)
            mapped = 0 if want == 0 else internal
            s.sendto(struct.pack(">BBHIHHI", 0, 128 + op, 0, epoch, internal, mapped, granted), src)
        else:
            record(proto="natpmp", op=-1, raw=data.hex())
            if len(data) >= 2:
                s.sendto(struct.pack(">BBHI", 0, 128 + data[1], 5, epoch), src)  # unsupported opcode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--external", default="203.0.113.7")
    ap.add_argument("--natpmp-lifetime", type=int, default=3600)
    ap.add_argument("--permanent-only", action="store_true", help="refuse leases other than 0 (UPnP error 725)")
    a = ap.parse_args()
    Igd.external = a.external
    Igd.permanent_only = a.permanent_only
    srv = Server((a.bind, a.http_port), Igd)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((a.bind, 5351))
    threading.Thread(target=natpmp, args=(u, a.external, a.natpmp_lifetime), daemon=True).start()
    record(proto="gateway", action="ready")
    srv.serve_forever()


if __name__ == "__main__":
    main()
