"""A minimal shoal sync peer for tests, written from docs/ARCHITECTURE.md's description of
the protocol (libsodium through ctypes): it dials a device, does the handshake with a
folder key it is given, and sends what a test wants (a forged index record, say).
"""
import base64
import ctypes
import hashlib
import socket
import struct

import bencoding

_na = ctypes.CDLL("libsodium.so.23")
_na.sodium_init()

MAGIC = b"SHOALSYNC\x01"


def _buf(n):
    return ctypes.create_string_buffer(n)


def key_payload(text):
    """The 32-byte payload of a key's text form ('W' or 'R', then base32)."""
    body = text.strip().replace("-", "").replace(" ", "").upper()[1:]
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    return raw[:32]


def folder_public_key(text):
    payload = key_payload(text)
    if text.strip().upper().startswith("R"):
        return payload
    pk, sk = _buf(32), _buf(64)
    _na.crypto_sign_seed_keypair(pk, sk, payload)
    return pk.raw


def share_id(pk):
    return hashlib.sha256(b"shoal-sync-share" + pk).digest()


def sign_keypair():
    pk, sk = _buf(32), _buf(64)
    _na.crypto_sign_keypair(pk, sk)
    return pk.raw, sk.raw


def sign(sk, msg):
    sig = _buf(64)
    _na.crypto_sign_detached(sig, None, msg, ctypes.c_ulonglong(len(msg)), sk)
    return sig.raw


def device_id(pk):
    return base64.b32encode(hashlib.sha256(pk).digest()[:16]).decode().rstrip("=")


def _kdf(folder_pk, shared, d_eph, l_eph, label):
    out = _buf(32)
    data = shared + d_eph + l_eph + label
    _na.crypto_generichash(out, ctypes.c_size_t(32), data, ctypes.c_ulonglong(len(data)), folder_pk,
                           ctypes.c_size_t(len(folder_pk)))
    return out.raw


class Cipher:
    def __init__(self, key):
        self.key = key
        self.counter = 0

    def _nonce(self):
        n = b"\0\0\0\0" + struct.pack(">Q", self.counter)
        self.counter += 1
        return n

    def seal(self, msg):
        out = _buf(len(msg) + 16)
        clen = ctypes.c_ulonglong()
        _na.crypto_aead_chacha20poly1305_ietf_encrypt(out, ctypes.byref(clen), msg, ctypes.c_ulonglong(len(msg)),
                                                      None, ctypes.c_ulonglong(0), None, self._nonce(), self.key)
        return struct.pack(">I", len(msg) + 16) + out.raw

    def open(self, c):
        out = _buf(max(1, len(c) - 16))
        mlen = ctypes.c_ulonglong()
        rc = _na.crypto_aead_chacha20poly1305_ietf_decrypt(out, ctypes.byref(mlen), None, c,
                                                           ctypes.c_ulonglong(len(c)), None, ctypes.c_ulonglong(0),
                                                           self._nonce(), self.key)
        return None if rc != 0 else out.raw[:mlen.value]


class Peer:
    """Dials host:port as a device of the folder whose key text is `key_text` (or sends the
    share id `claim_share` while holding another key)."""

    def __init__(self, host, port, key_text, timeout=10.0, claim_share=None):
        self.folder_pk = folder_public_key(key_text)
        self.share = claim_share or share_id(self.folder_pk)
        self.dev_pk, self.dev_sk = sign_keypair()
        self.id = device_id(self.dev_pk)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        eph_pk, eph_sk = _buf(32), _buf(32)
        _na.crypto_box_keypair(eph_pk, eph_sk)
        self.sock.sendall(MAGIC + self.share + eph_pk.raw)
        l_eph = self._exact(32)
        shared = _buf(32)
        if _na.crypto_scalarmult(shared, eph_sk.raw, l_eph) != 0:
            raise RuntimeError("low-order key")
        self.tx = Cipher(_kdf(self.folder_pk, shared.raw, eph_pk.raw, l_eph, b"shoal-sync dialler->listener"))
        self.rx = Cipher(_kdf(self.folder_pk, shared.raw, eph_pk.raw, l_eph, b"shoal-sync listener->dialler"))
        transcript = b"shoal-sync-hello\0" + self.share + eph_pk.raw + l_eph + b"D"
        self.send({"device": self.dev_pk, "seq": 0, "sig": sign(self.dev_sk, transcript), "write": 0})
        self.hello = self.read()

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("closed")
            data += chunk
        return data

    def send(self, obj):
        self.sock.sendall(self.tx.seal(bencoding.encode(obj)))

    def read(self):
        (n,) = struct.unpack(">I", self._exact(4))
        msg = self.rx.open(self._exact(n))
        if msg is None:
            raise RuntimeError("a frame failed to authenticate")
        return bencoding.decode(msg)

    def close(self):
        self.sock.close()


def record(path, by, data=b"", mode=0o644, mtime_ns=1_700_000_000_000_000_000):
    """The canonical bencode of a file record (see sync/index.hpp's encode_record)."""
    bsize = 128 * 1024
    blocks = b"".join(hashlib.sha256(data[i:i + bsize]).digest() for i in range(0, len(data), bsize))
    return bencoding.encode({
        "blocks": blocks, "bsize": bsize, "by": by.encode(), "deleted": 0, "mode": mode, "mtime": mtime_ns,
        "path": path.encode(), "size": len(data), "target": b"", "type": 0, "version": [[by.encode(), 1]]
    })


def record_signature(sk, canonical):
    return sign(sk, b"shoal-sync-record\0" + canonical)
