#!/usr/bin/env python3
"""Writes the seed corpora of the protocol fuzz targets (wire, tracker, resume) byte for
byte; rerun after changing it: python3 fuzz/make_protocol_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def msg(mid, payload=b""):
    return struct.pack(">IB", len(payload) + 1, mid) + payload


hs = bytes([19]) + b"BitTorrent protocol" + b"\0\0\0\0\0\x10\0\x05" + b"\xab" * 20 + b"-SH0100-" + b"x" * 12
ext = b"d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e4:reqqi500e1:v9:shoal 0.16:yourip4:\x7f\0\0\x01e"
put("wire", "handshake-then-messages", hs + msg(5, b"\xff\xc0") + msg(1) + msg(2) + msg(4, struct.pack(">I", 3)))
put("wire", "requests", msg(6, struct.pack(">III", 0, 0, 16384)) + msg(8, struct.pack(">III", 1, 16384, 16384)) +
    msg(16, struct.pack(">III", 2, 0, 16384)))
put("wire", "piece", msg(7, struct.pack(">II", 5, 0) + b"d" * 64))
put("wire", "fast", msg(14) + msg(15) + msg(13, struct.pack(">I", 9)) + msg(17, struct.pack(">I", 4)))
put("wire", "extended", msg(20, b"\0" + ext) + msg(20, b"\x02d8:msg_typei0e5:piecei0ee"))
put("wire", "keepalive-port", b"\0\0\0\0" + msg(9, b"\x1a\xe1"))
put("wire", "oversized-prefix", struct.pack(">I", (1 << 20) + 14) + b"\x07")
hreq = bytes(range(32)) + struct.pack(">IIII", 2, 0, 4, 3)
put("wire", "hash-messages", msg(21, hreq) + msg(22, hreq + bytes(32) * 6) + msg(23, hreq) +
    msg(21, bytes(32) + struct.pack(">IIII", 0, 4, 8, 0)))
put("wire", "bad-lengths", msg(4, b"\0\0") + msg(0, b"x") + msg(99))

put("tracker", "compact", b"d8:intervali1800e12:min intervali60e8:completei3e10:incompletei2e5:peers12:"
    b"\x7f\0\0\x01\x1a\xe1\x0a\0\0\x02\0\x50" b"6:peers618:" + b"\0" * 15 + b"\x01\x1a\xe2" + b"e")
put("tracker", "dict-peers", b"d8:intervali900e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eeee")
put("tracker", "failure", b"d14:failure reason16:torrent unknowne")
put("tracker", "warning-external", b"d8:intervali5e15:warning message4:slow11:external ip4:\x01\x02\x03\x04e")
put("tracker", "scrape", b"d5:filesd20:" + b"\xab" * 20 + b"d8:completei5e10:downloadedi50e10:incompletei10eeee")
put("tracker", "udp-connect", struct.pack(">IIQ", 0, 0x11223344, 0x0102030405060708))
put("tracker", "udp-announce", struct.pack(">IIIII", 1, 0x11223344, 1800, 3, 4) + b"\x7f\0\0\x01\x1a\xe1")
put("tracker", "udp-error", struct.pack(">II", 3, 0x11223344) + b"not allowed")

k = b"k" * 20
put("resume", "seven", b"d10:downloadedi7e11:file-format12:shoal resume12:file-versioni1e9:info-hash20:" + k +
    b"10:num piecesi7e6:pieces1:\xfe8:uploadedi5ee")
put("resume", "hundred", b"d11:file-format12:shoal resume9:info-hash20:" + k + b"10:num piecesi100e6:pieces13:" +
    b"\xff" * 12 + b"\xf0" + b"e")
put("resume", "wrong-hash", b"d11:file-format12:shoal resume9:info-hash20:" + b"x" * 20 + b"10:num piecesi1e6:pieces1:\x80e")
put("resume", "torn", b"d11:file-format12:shoal resume9:info-hash20:" + k + b"10:num pie")

nid = b"n" * 20
node = nid + b"\x7f\0\0\x01\x1a\xe1"
node6 = nid + b"\0" * 15 + b"\x01\x1a\xe1"
put("krpc", "ping", b"d1:ad2:id20:" + nid + b"e1:q4:ping1:t2:aa1:y1:qe")
put("krpc", "find-node-want", b"d1:ad2:id20:" + nid + b"6:target20:" + b"t" * 20 + b"4:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe")
put("krpc", "get-peers-scrape", b"d1:ad2:id20:" + nid + b"9:info_hash20:" + b"i" * 20 + b"6:scrapei1ee1:q9:get_peers1:t2:aa1:y1:qe")
put("krpc", "announce", b"d1:ad2:id20:" + nid + b"12:implied_porti1e9:info_hash20:" + b"i" * 20 +
    b"4:porti6881e4:seedi1e5:token8:abcdefghe1:q13:announce_peer1:t2:aa1:y1:qe")
put("krpc", "response-nodes-values", b"d2:ip6:\x01\x02\x03\x04\x1a\xe11:rd2:id20:" + nid + b"5:nodes26:" + node +
    b"6:nodes638:" + node6 + b"5:token4:tokn6:valuesl6:\x7f\0\0\x01\x1a\xe118:" + b"\0" * 15 + b"\x01\x1a\xe1" +
    b"e4:BFpe256:" + b"\x0f" * 256 + b"e1:t2:aa1:y1:re")
put("krpc", "put-mutable", b"d1:ad3:casi4e2:id20:" + nid + b"1:k32:" + b"k" * 32 + b"4:salt3:foo3:seqi5e3:sig64:" +
    b"s" * 64 + b"5:token8:abcdefgh1:vd1:ai1e1:bl1:x1:yeee1:q3:put1:t2:aa1:y1:qe")
put("krpc", "get-response-item", b"d1:rd2:id20:" + nid + b"1:k32:" + b"k" * 32 + b"3:seqi9e3:sig64:" + b"s" * 64 +
    b"1:v12:Hello World!e1:t2:aa1:y1:re")
put("krpc", "sample-infohashes", b"d1:rd2:id20:" + nid + b"8:intervali300e5:nodes26:" + node + b"3:numi3e7:samples40:" +
    b"h" * 40 + b"e1:t2:aa1:y1:re")
put("krpc", "error", b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee")
put("krpc", "read-only", b"d1:ad2:id20:" + nid + b"e1:q4:ping2:roi1e1:t2:aa1:v4:LT\x01\x021:y1:qe")

ih = "ab" * 20
put("lsd", "one", b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: " + ih.encode() +
    b"\r\ncookie: c00k1e\r\n\r\n\r\n")
put("lsd", "two-hashes-odd-case", b"BT-SEARCH * HTTP/1.1\r\nhost: [ff15::efc0:988f]:6771\r\nPORT:  51413 \r\n"
    b"infohash: " + ih.encode() + b"\r\nINFOHASH: " + ("cd" * 20).encode() + b"\r\nX-Other: 1\r\n\r\n\r\n")
put("lsd", "bad-port", b"BT-SEARCH * HTTP/1.1\r\nPort: 99999\r\nInfohash: " + ih.encode() + b"\r\n\r\n")

# tracker_server: records of kind (1 byte), length (2 bytes), data; see fuzz_tracker_server.cpp.
# The first data byte of an HTTP or UDP record picks the source address (0: 127.0.0.1, 1: ::1).


def rec(kind, data):
    return struct.pack(">BH", kind, len(data)) + data


def http(path, src=0):
    return rec(0, bytes([src]) + path.encode("latin-1"))


def pct(raw):
    return "".join("%%%02X" % b for b in raw)


ih = b"\xab" * 19 + b"\x00"
pid = b"-XX0001-abcdefghijkl"
q = f"announce?info_hash={pct(ih)}&peer_id={pct(pid)}&port=6881&uploaded=0&downloaded=0&left=100"
udp_connect = struct.pack(">QII", 0x41727101980, 0, 0x11223344)
udp_ann = struct.pack(">QII", 0, 1, 0x55667788) + ih + pid + struct.pack(">QQQIIIiH", 0, 100, 0, 2, 0, 9, -1, 6881)
udp_scrape = struct.pack(">QII", 0, 2, 0x01020304) + ih + b"\xcd" * 20
put("tracker_server", "http-announce-scrape-stats",
    http(q + "&event=started") + http(q.replace("6881", "6882").replace("left=100", "left=0") + "&compact=0", 1) +
    http(f"scrape?info_hash={pct(ih)}") + http("stats"))
put("tracker_server", "http-bad", http("announce?port=1") + http("announce?info_hash=\xff") + http("x" * 2100) +
    http("nothing"))
put("tracker_server", "udp-conversation",
    rec(1, udp_connect) + rec(2, udp_ann) + rec(2, udp_ann[:-2] + b"\x1a\xe2") + rec(2, udp_scrape) +
    rec(2, udp_ann[:80] + struct.pack(">I", 3) + udp_ann[84:]))
put("tracker_server", "udp-bad", rec(1, udp_connect[:15]) + rec(1, udp_ann) + rec(2, udp_ann[:97]) +
    rec(2, udp_scrape[:30]) + rec(1, b"\x00" * 8 + struct.pack(">II", 9, 1)))
put("tracker_server", "expiry", http(q + "&event=started") + rec(3, b"\x0c") + http(q.replace("6881", "7000")) +
    rec(3, b"\xff") + http("stats"))
put("tracker_server", "whitelist", rec(4, b"# list\n" + b"ab" * 20 + b"\n\n" + b"zz" * 20 + b"\n"))

# MSE: the first byte picks the mode (0 responder, 1 initiator, 2-3 an honest pair the rest
# of the input tampers with). Real-looking bytes: a 96-byte key, padding, a plaintext
# handshake where an encrypted one was expected.
put("mse", "responder-key-and-pad", b"\x00" + bytes(range(96)) + b"\x11" * 40)
put("mse", "initiator-plain-handshake", b"\x01" + hs)
put("mse", "pair-clean", b"\x02\x02\x03" + b"\x40" * 32)
put("mse", "pair-plaintext-offer", b"\x03\x00\x02" + b"\x10" * 32)
put("mse", "pair-flip", b"\x02\x02\x02\x0e\x30\x07" + b"\x0e\x05\x09" * 10)
put("mse", "pair-cut", b"\x02\x01\x01\x31\x50" + b"\x30\x20" * 10)

# Proxy replies: the first byte picks the parser (0 method, 1 auth, 2 reply, 3 UDP, 4 HTTP).
put("proxy", "method-password", b"\x80\x05\x02")
put("proxy", "method-refused", b"\x00\x05\xff")
put("proxy", "auth-ok", b"\x01\x01\x00")
put("proxy", "reply-ipv4", b"\x02\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38")
put("proxy", "reply-ipv6", b"\x02\x05\x00\x00\x04" + b"\0" * 15 + b"\x01\x1a\xe1")
put("proxy", "reply-domain", b"\x02\x05\x00\x00\x03\x0bexample.org\x00\x50")
put("proxy", "reply-refused", b"\x02\x05\x05\x00\x01\0\0\0\0\0\0")
put("proxy", "udp-ipv4", b"\x03\x00\x00\x00\x01\x0a\x00\x00\x01\x1b\x39payload")
put("proxy", "udp-domain", b"\x03\x00\x00\x00\x03\x04host\x00\x35dns")
put("proxy", "http-200", b"\x04HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n")
put("proxy", "http-407", b"\x04HTTP/1.0 407 Proxy Authentication Required\r\nContent-Length: 9\r\n\r\nbody")
def utp(ptype, seq, ack, payload=b"", sack=b"", conn=10, wnd=1 << 20):
    h = struct.pack(">BBHIIIHH", (ptype << 4) | 1, 1 if sack else 0, conn, 1000, 0, wnd, seq, ack)
    if sack:
        h += bytes([0, len(sack)]) + sack
    return h + payload


# fuzz_utp: byte 0 even = one datagram through the codec, then the same bytes as operations
# on one connection; odd = two connections over a link the input drives.
put("utp", "data", b"\x00" + utp(0, 5, 7, b"hello world"))
put("utp", "state-sack", b"\x00" + utp(2, 5, 7, sack=b"\x05\x00\x00\x80"))
put("utp", "syn", b"\x00" + utp(4, 1, 0))
put("utp", "fin-reset", b"\x00" + utp(1, 9, 3) + utp(3, 0, 0))
put("utp", "unknown-ext", b"\x00" + bytes([0x01, 7]) + b"\0" * 18 + bytes([1, 2, 9, 9, 0, 4, 1, 0, 0, 0]) + b"x")
put("utp", "acceptor-ops", b"\x00\x10\x01\x01\xff\xf0" + bytes([2, 40, 4, 1, 0, 30]) + utp(0, 0x5556, 0xffef, b"d" * 10) +
    bytes([3, 4, 50, 2, 200, 4, 100, 133]))
put("utp", "pair-transfer", b"\x01\xff\xf8" + bytes([6, 6, 6, 6, 4, 200, 6, 6, 5, 0, 6, 6, 3, 6, 2, 6, 4, 255, 6, 6, 6, 5] * 8))
