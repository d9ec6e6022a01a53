"""Bencode for the interop tests' hand-made packets (dict keys are sorted on encode)."""


def encode(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, list):
        return b"l" + b"".join(encode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(encode(k) + encode(x) for k, x in items) + b"e"
    raise TypeError(type(v))


def decode(data):
    """Decodes one value; raises ValueError on malformed input. Dict keys stay bytes."""
    v, end = _dec(data, 0)
    return v


def _dec(d, i):
    c = d[i:i + 1]
    if c == b"i":
        e = d.index(b"e", i)
        return int(d[i + 1:e]), e + 1
    if c == b"l":
        i += 1
        out = []
        while d[i:i + 1] != b"e":
            v, i = _dec(d, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while d[i:i + 1] != b"e":
            k, i = _dec(d, i)
            v, i = _dec(d, i)
            out[k] = v
        return out, i + 1
    if c.isdigit():
        colon = d.index(b":", i)
        n = int(d[i:colon])
        return d[colon + 1:colon + 1 + n], colon + 1 + n
    raise ValueError(f"bad bencode at {i}")
