#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (the tool-made .torrent files and magnet
links are described in docs/FUZZING.md). Usage: fuzz/make_seeds.py [bencode|metainfo|magnet ...]
from the repository root; existing files of the same name are overwritten."""
import base64
import hashlib
import os
import sys

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def bencode_seeds(out):
    """Bencode edge cases: integer and string bounds, nesting limits, canonical form."""
    cases = {
        'int-zero': b'i0e', 'int-neg': b'i-1e', 'int-max': b'i9223372036854775807e', 'int-min': b'i-9223372036854775808e',
        'int-overflow': b'i9223372036854775808e', 'int-underflow': b'i-9223372036854775809e', 'int-neg-zero': b'i-0e',
        'int-leading-zero': b'i03e', 'int-empty': b'ie', 'int-minus-only': b'i-e', 'int-truncated': b'i12', 'int-plus': b'i+1e',
        'int-space': b'i 1e', 'int-double-minus': b'i--1e', 'int-long-zeros': b'i0000000000000000000000000000001e',
        'str-empty': b'0:', 'str-spam': b'4:spam', 'str-leading-zero': b'04:spam', 'str-short': b'5:spam', 'str-colon-only': b':',
        'str-no-colon': b'4spam', 'str-19-digits': b'9999999999999999999:x', 'str-20-digits': b'99999999999999999999:x',
        'str-binary': b'6:\x00\xff\x01e:d', 'str-neg-len': b'-1:a',
        'list-empty': b'le', 'list-mixed': b'l4:spami42ee', 'list-nested': b'lli1eeleldee', 'list-unterminated': b'l4:spam',
        'list-depth-100': b'l' * 100 + b'e' * 100, 'list-depth-101': b'l' * 101 + b'e' * 101,
        'dict-depth-100': b'd1:a' * 99 + b'de' + b'e' * 99,
        'dict-empty': b'de', 'dict-simple': b'd3:cow3:moo4:spam4:eggse', 'dict-unsorted': b'd4:spam1:a3:cow1:be',
        'dict-duplicate': b'd1:ai1e1:ai2ee', 'dict-int-key': b'di1ei2ee', 'dict-list-key': b'dlei1ee',
        'dict-missing-value': b'd1:ae', 'dict-nested': b'd1:ad1:bl1:cei-7eee', 'dict-empty-key': b'd0:i1e1:a0:e',
        'dict-binary-keys': b'd1:\x001:a1:\x7f1:b1:\xff1:ce', 'dict-prefix-keys': b'd1:a0:2:aa0:3:aaa0:e',
        'trailing-value': b'i1ei2e', 'trailing-garbage': b'lexyz', 'trailing-newline': b'd1:a1:be\n',
        'lone-e': b'e', 'empty': b'', 'garbage': b'x', 'whitespace': b' i1e', 'upper-case': b'I1E',
        'many-ints': b'l' + b'i1e' * 500 + b'e', 'many-keys': b'd' + b''.join(b'3:k%02di%de' % (i, i) for i in range(100)) + b'e',
        'torrent-like': b'd8:announce20:http://127.0.0.1/ann4:infod6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:'
                        + b'\x11' * 20 + b'ee',
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + '.bencode'), 'wb') as f:
            f.write(data)


def metainfo_seeds(out):
    """.torrent edge cases: hostile paths, bounds, v2 trees, piece layers, hybrids."""

    class OD:  # dict written in the given order (to make unsorted/duplicate keys)
        def __init__(self, pairs): self.pairs = pairs

    def enc(v):
        if isinstance(v, bool): v = int(v)
        if isinstance(v, int): return b'i%de' % v
        if isinstance(v, str): v = v.encode()
        if isinstance(v, bytes): return b'%d:%s' % (len(v), v)
        if isinstance(v, list): return b'l' + b''.join(enc(x) for x in v) + b'e'
        if isinstance(v, OD): return b'd' + b''.join(enc(k) + enc(x) for k, x in v.pairs) + b'e'
        if isinstance(v, dict):
            items = sorted(((k.encode() if isinstance(k, str) else k), x) for k, x in v.items())
            return b'd' + b''.join(enc(k) + enc(x) for k, x in items) + b'e'
        raise TypeError(v)

    PL = 16384
    def v1_pieces(total):
        n = (total + PL - 1) // PL
        return b''.join(hashlib.sha1(b'%d' % i).digest() for i in range(n))

    def v1_multi(files, name='t', extra_info=None, extra_top=None):
        total = sum(f['length'] for f in files)
        info = {'name': name, 'piece length': PL, 'pieces': v1_pieces(total), 'files': files}
        if extra_info: info.update(extra_info)
        top = {'info': info, 'announce': 'http://127.0.0.1:6969/announce'}
        if extra_top: top.update(extra_top)
        return enc(top)

    def w(name, data):
        with open(os.path.join(out, name), 'wb') as f: f.write(data)

    def f(path, length=10, **kw):
        d = {'length': length, 'path': path}
        d.update(kw)
        return d

    w('edge-traversal.torrent', v1_multi([f(['..', '..', 'etc', 'passwd']), f(['/abs', 'x']), f(['.', 'y']),
        f(['', 'z']), f(['C:', 'win']), f(['a\\b']), f(['..'])], name='..'))
    w('edge-name-dotdot.torrent', v1_multi([f(['a'])], name='..'))
    w('edge-name-slash.torrent', enc({'info': {'name': '/etc/passwd', 'piece length': PL, 'pieces': v1_pieces(5), 'length': 5}}))
    w('edge-drive-letter.torrent', v1_multi([f(['c:', 'x']), f(['D:evil'])], name='C:'))
    w('edge-bad-utf8.torrent', v1_multi([f([b'\xff\xfe', b'\xc0\xaf']), f([b'ok\xed\xa0\x80']), f([b'\xf4\x90\x80\x80'])],
        name=b'bad\xe2\x82', extra_top={'comment': b'\xff', 'created by': b'\x80x'}))
    w('edge-nul-control.torrent', v1_multi([f([b'a\x00b']), f([b'\x01\x1f\x7f']), f([b'new\nline'])], name=b'n\x00ame'))
    w('edge-long-component.torrent', v1_multi([f(['x' * 300 + '.txt']), f(['\u00e9' * 200]), f(['y' * 255]), f(['.' * 300])]))
    w('edge-duplicates.torrent', v1_multi([f(['a']), f(['a']), f(['a.1']), f(['A']), f(['a', 'b']), f(['..', 'a'])]))
    w('edge-duplicate-long.torrent', v1_multi([f(['L' * 255]), f(['L' * 255])]))
    w('edge-utf8-keys.torrent', v1_multi([{'length': 3, 'path': ['plain'], 'path.utf-8': ['\u00fcnicode']}],
        extra_info={'name.utf-8': 'n\u00e4me'}, extra_top={'comment.utf-8': 'c\u00f6mment', 'comment': 'comment'}))
    w('edge-attrs.torrent', v1_multi([f(['exe'], attr='x'), f(['hidden'], attr='h'), f(['.pad', '16374'], 16374, attr='p'),
        f(['link'], 0, attr='l', **{'symlink path': ['..', 'target', '.', 'x']}), f(['link2'], 0, attr='l', **{'symlink path': ['..']})]))
    w('edge-symlink-missing-path.torrent', v1_multi([f(['link'], 0, attr='l')]))
    w('edge-empty-files.torrent', v1_multi([f(['a'], 0), f(['b'], 0)]))
    w('edge-files-empty-list.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': b'', 'files': []}}))
    w('edge-length-and-files.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': v1_pieces(5), 'length': 5, 'files': [f(['a'], 5)]}}))
    w('edge-negative-length.torrent', v1_multi([f(['a'], -1)]))
    w('edge-huge-length.torrent', enc({'info': {'name': 'x', 'piece length': 1 << 30, 'pieces': b'\0' * 20, 'length': 1 << 57}}))
    w('edge-too-many-pieces.torrent', enc({'info': {'name': 'x', 'piece length': 1, 'pieces': b'\0' * 20, 'length': (1 << 21) + 1}}))
    w('edge-piece-length-zero.torrent', enc({'info': {'name': 'x', 'piece length': 0, 'pieces': b'', 'length': 0}}))
    w('edge-piece-length-big.torrent', enc({'info': {'name': 'x', 'piece length': (1 << 30) + 1, 'pieces': b'\0' * 20, 'length': 1}}))
    w('edge-pieces-odd.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': b'\0' * 19, 'length': 1}}))
    w('edge-pieces-count.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': b'\0' * 40, 'length': 1}}))
    w('edge-meta-version-3.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': b'\0' * 20, 'length': 1, 'meta version': 3}}))
    w('edge-no-info.torrent', enc({'announce': 'x'}))
    w('edge-info-list.torrent', enc({'info': []}))
    w('edge-top-list.torrent', enc([{'info': {}}]))
    w('edge-unsorted-trailing.torrent', enc(OD([('info', OD([('pieces', b'\0' * 20), ('name', 'x'), ('length', 1), ('piece length', PL),
        ('name', 'second')])), ('announce', 'http://a/')])) + b'trailing garbage')
    w('edge-trackers.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': b'\0' * 20, 'length': 1},
        'announce': 'http://fallback/', 'announce-list': [[], 'notalist', ['http://a/', 'http://a/', '', 5], [b'\xffbad'], ['http://b/']],
        'url-list': 'http://single-ws/', 'creation date': -5, 'private': 1}))
    w('edge-url-list.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'pieces': b'\0' * 20, 'length': 1, 'private': 1, 'source': 'S'},
        'url-list': ['http://a/', '', 7, ['x'], 'http://a/'], 'announce-list': 5, 'announce': ''}))

    # v2 trees.
    def root_of(n):
        return hashlib.sha256(b'root%d' % n).digest()
    def v2(tree, pl=PL, layers=None, extra_info=None, name='v2'):
        info = {'name': name, 'piece length': pl, 'meta version': 2, 'file tree': tree}
        if extra_info: info.update(extra_info)
        top = {'info': info}
        if layers is not None: top['piece layers'] = layers
        return enc(top)
    def leaf(length, n=0, **kw):
        d = {'length': length}
        if length > 0: d['pieces root'] = root_of(n)
        d.update(kw)
        return {'': d}
    w('edge-v2-traversal.torrent', v2({'..': {'..': {'x': leaf(5, 1)}}, '/abs': leaf(5, 2), 'C:': leaf(5, 3), b'\xff': leaf(0)}))
    w('edge-v2-root-file.torrent', v2({'': {'length': 5, 'pieces root': root_of(1)}}))
    w('edge-v2-file-and-dir.torrent', v2({'a': {'': {'length': 0}, 'b': leaf(0)}}))
    w('edge-v2-bad-root.torrent', v2({'a': {'': {'length': 5, 'pieces root': b'short'}}}))
    w('edge-v2-missing-root.torrent', v2({'a': {'': {'length': 5}}}))
    w('edge-v2-symlink.torrent', v2({'l': leaf(0, attr='l', **{'symlink path': ['..', '..', 'x']}), 'f': leaf(20000, 4)}))
    w('edge-v2-piece-length.torrent', v2({'a': leaf(5, 1)}, pl=16383))
    w('edge-v2-no-tree.torrent', enc({'info': {'name': 'x', 'piece length': PL, 'meta version': 2}}))
    w('edge-v2-empty-tree.torrent', v2({}))
    # A file of three pieces whose layer really hashes to its root, one with a wrong layer,
    # one with a layer of the wrong size.
    def merkle_root(leaves, pad):
        level = list(leaves)
        p = pad
        while len(level) > 1:
            if len(level) % 2: level.append(p)
            level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
            p = hashlib.sha256(p + p).digest()
        return level[0]
    pad = b'\0' * 32  # piece length 16 KiB = one block: pad hash of 0 levels
    layer = b''.join(hashlib.sha256(b'piece%d' % i).digest() for i in range(3))
    good_root = merkle_root([layer[i:i + 32] for i in range(0, 96, 32)], pad)
    def leaf_root(length, r):
        return {'': {'length': length, 'pieces root': r}}
    bad_root = hashlib.sha256(b'other').digest()
    odd_root = hashlib.sha256(b'odd').digest()
    w('edge-v2-layers.torrent', v2({'good': leaf_root(3 * PL, good_root), 'bad': leaf_root(3 * PL, bad_root), 'odd': leaf_root(2 * PL + 1, odd_root),
        'missing': leaf(PL + 1, 9), 'small': leaf(100, 10)},
        layers={good_root: layer, bad_root: layer, odd_root: layer}))
    w('edge-v2-layers-not-dict.torrent', v2({'good': leaf_root(3 * PL, good_root)}, layers=[layer]))
    # Hybrid: consistent, and inconsistent in names, sizes, order and single/multi.
    def hybrid(v1files, tree, name='h'):
        total = sum(x['length'] for x in v1files)
        info = {'name': name, 'piece length': PL, 'meta version': 2, 'file tree': tree, 'pieces': v1_pieces(total), 'files': v1files}
        return enc({'info': info})
    w('edge-hybrid-ok.torrent', hybrid([f(['a'], 100), f(['.pad', '16284'], 16284, attr='p'), f(['b'], 5)], {'a': leaf(100, 1), 'b': leaf(5, 2)}))
    w('edge-hybrid-mismatch-size.torrent', hybrid([f(['a'], 100), f(['.pad', '16284'], 16284, attr='p'), f(['b'], 5)], {'a': leaf(101, 1), 'b': leaf(5, 2)}))
    w('edge-hybrid-mismatch-name.torrent', hybrid([f(['a'], 5)], {'z': leaf(5, 1)}))
    w('edge-hybrid-unaligned.torrent', hybrid([f(['a'], 100), f(['b'], 5)], {'a': leaf(100, 1), 'b': leaf(5, 2)}))
    w('edge-hybrid-extra-v2.torrent', hybrid([f(['a'], 5)], {'a': leaf(5, 1), 'b': leaf(5, 2)}))
    w('edge-hybrid-single-v1-multi-v2.torrent', enc({'info': {'name': 'h', 'piece length': PL, 'meta version': 2,
        'file tree': {'h': {'x': leaf(5, 1)}}, 'pieces': v1_pieces(5), 'length': 5}}))
    w('edge-hybrid-single.torrent', enc({'info': {'name': 'h', 'piece length': PL, 'meta version': 2,
        'file tree': {'h': leaf(5, 1)}, 'pieces': v1_pieces(5), 'length': 5}}))


def magnet_seeds(out):
    """Magnet links of every form, valid and not."""
    h1 = 'c4d1f2f0b1af46f71c97b529582c685df4ba4bac'
    h1b = base64.b32encode(bytes.fromhex(h1)).decode()
    h2 = '6650797265ebabd9ac89602818dec122ca0d8e46f352f368cf631f37d32f6be3'
    hy1 = '677ac459a726dc0bb3a55f66ef0057d9d633b6a9'
    cases = {
        'btih-hex': f'magnet:?xt=urn:btih:{h1}',
        'btih-hex-upper': f'magnet:?xt=urn:btih:{h1.upper()}',
        'btih-base32': f'magnet:?xt=urn:btih:{h1b}',
        'btih-base32-lower': f'magnet:?xt=urn:btih:{h1b.lower()}',
        'btmh': f'magnet:?xt=urn:btmh:1220{h2}',
        'hybrid': f'magnet:?xt=urn:btih:{hy1}&xt=urn:btmh:1220{h2}&dn=single.bin',
        'hybrid-indexed': f'magnet:?xt.1=urn:btih:{hy1}&xt.2=urn:btmh:1220{h2}',
        'dn-encoded': f'magnet:?xt=urn:btih:{h1}&dn=My%20Movie%20%C3%A9t%C3%A9+2024%2B%26more',
        'dn-bad-utf8': f'magnet:?xt=urn:btih:{h1}&dn=%FF%FE%00x',
        'tr-many': f'magnet:?xt=urn:btih:{h1}&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://127.0.0.1:6969&tr.1=http://a/&tr=http://a/&tr=',
        'ws': f'magnet:?xt=urn:btih:{h1}&ws=http%3A%2F%2F127.0.0.1%3A8080%2Ffiles%2F&ws=http://b/x&ws=',
        'x-pe': f'magnet:?xt=urn:btih:{h1}&x.pe=127.0.0.1:6881&x.pe=%5B::1%5D:51413&x.pe=%5Bfe80::1%5D:1&x.pe=host.example:65535',
        'x-pe-raw-brackets': f'magnet:?xt=urn:btih:{h1}&x.pe=[::1]:6881',
        'x-pe-bad-port': f'magnet:?xt=urn:btih:{h1}&x.pe=127.0.0.1:0',
        'x-pe-no-port': f'magnet:?xt=urn:btih:{h1}&x.pe=127.0.0.1',
        'x-pe-bad-v6': f'magnet:?xt=urn:btih:{h1}&x.pe=[::1:6881',
        'so': f'magnet:?xt=urn:btmh:1220{h2}&so=0,2,4-6,8-8',
        'so-bad-order': f'magnet:?xt=urn:btih:{h1}&so=5-3',
        'so-too-big': f'magnet:?xt=urn:btih:{h1}&so=0-16777217',
        'so-empty-item': f'magnet:?xt=urn:btih:{h1}&so=1,,2',
        'so-trailing-comma': f'magnet:?xt=urn:btih:{h1}&so=1,',
        'everything': f'magnet:?xt=urn:btih:{hy1}&xt=urn:btmh:1220{h2}&dn=n&tr=http://t/&ws=http://w/&x.pe=1.2.3.4:5&so=0-1',
        'other-urn': f'magnet:?xt=urn:ed2k:31d6cfe0d16ae931b73c59d7e0c089c0&xt=urn:btih:{h1}&xl=10&as=http://x/&kt=a+b',
        'only-other-urn': 'magnet:?xt=urn:sha1:YNCKHTQCWBTRNJIV4WNAE52SJUQCZO5C',
        'two-btih': f'magnet:?xt=urn:btih:{h1}&xt=urn:btih:{hy1}',
        'same-btih-twice': f'magnet:?xt=urn:btih:{h1}&xt=urn:btih:{h1b}',
        'btih-short': 'magnet:?xt=urn:btih:abc',
        'btih-bad-hex': 'magnet:?xt=urn:btih:' + 'g' * 40,
        'btih-bad-base32': 'magnet:?xt=urn:btih:' + '1' * 32,
        'btmh-wrong-prefix': f'magnet:?xt=urn:btmh:1114{h2}',
        'btmh-short': 'magnet:?xt=urn:btmh:1220abcd',
        'upper-scheme': f'MAGNET:?XT=urn:btih:{h1}&xt=URN:BTIH:{h1}',
        'no-params': 'magnet:',
        'no-hash': 'magnet:?dn=x&tr=http://a/',
        'not-magnet': f'http://example/?xt=urn:btih:{h1}',
        'fragment': f'magnet:?xt=urn:btih:{h1}#frag&dn=x',
        'bad-percent': f'magnet:?xt=urn:btih:{h1}&dn=%zz',
        'empty-params': f'magnet:?&&xt=urn:btih:{h1}&&=&dn',
        'space': f'magnet:?xt=urn:btih:{h1}&dn=a b',
        'too-many-params': f'magnet:?xt=urn:btih:{h1}' + '&a' * 1024,
        'percent-key': f'magnet:?%78t=urn%3Abtih%3A{h1}',
        # Found by fuzz_magnet: an empty query before a fragment (Boost.URL 1.81 read past it).
        'crash-empty-query-fragment': 'magnet:?#',
        'crash-empty-query-fragment-hash': f'magnet:?#xt=urn:btih:{h1}',
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + '.magnet'), 'w') as f:
            f.write(data)


def _sync_key(letter, payload):
    """A sync key's text: the letter, then base32 of payload + SHA-256 checksum (4 bytes)."""
    check = hashlib.sha256(b'shoal-sync-key' + letter.encode() + payload).digest()[:4]
    return letter + base64.b32encode(payload + check).decode().rstrip('=')


# The Ed25519 public key of the seed 07 * 32 (libsodium and Python's cryptography agree).
SYNC_PUBLIC_7 = bytes.fromhex('ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c')


def sync_key_seeds(out):
    """Sync key texts: both types, loose forms, typos, wrong letters and lengths."""
    w = _sync_key('W', bytes([7]) * 32)
    r = _sync_key('R', SYNC_PUBLIC_7)
    typo = w[:9] + ('A' if w[9] != 'A' else 'B') + w[10:]
    cases = {
        'rw': w, 'ro': r, 'rw-lower': w.lower(), 'ro-dashed': '-'.join(r[i:i + 5] for i in range(0, len(r), 5)),
        'rw-spaced-newline': ' '.join(w[i:i + 4] for i in range(0, len(w), 4)) + '\n', 'rw-typo': typo,
        'rw-as-ro': 'R' + w[1:], 'device-letter': _sync_key('D', bytes([7]) * 32), 'short': w[:-1], 'long': w + 'A',
        'digit-0': w[:20] + '0' + w[21:], 'padding-bits': w[:-1] + '7', 'empty': '', 'only-letter': 'W',
        'ro-not-a-point': _sync_key('R', bytes([0xff]) * 32), 'ro-zero': _sync_key('R', bytes(32)),
        'magnet': 'magnet:?xt=urn:btih:' + 'a' * 40, 'spaces': ' ' * 1025,
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + '.key'), 'w') as f:
            f.write(data)


def sync_record_seeds(out):
    """Canonical bencode of sync index records (the fuzz target signs each input itself)."""

    def enc(v):
        if isinstance(v, int): return b'i%de' % v
        if isinstance(v, str): v = v.encode()
        if isinstance(v, bytes): return b'%d:%s' % (len(v), v)
        if isinstance(v, list): return b'l' + b''.join(enc(x) for x in v) + b'e'
        if isinstance(v, dict):
            return b'd' + b''.join(enc(k) + enc(v[k]) for k in sorted(v)) + b'e'
        raise TypeError(v)

    def rec(**kw):
        r = {'blocks': b'', 'bsize': 0, 'by': 'DEVICEA', 'deleted': 0, 'mode': 0o644, 'mtime': 1700000000123456789,
             'path': 'a.txt', 'size': 0, 'target': '', 'type': 0, 'version': [['DEVICEA', 1]]}
        r.update(kw)
        return enc(r)

    cases = {
        'file-empty': rec(bsize=131072),
        'file-3-blocks': rec(size=300 * 1024, bsize=131072, blocks=b'\x11' * 96, path='docs/a file.txt'),
        'dir': rec(type=1, path='docs', mode=0o755),
        'symlink': rec(type=2, path='link', target='../outside'),
        'deleted': rec(deleted=1, path='gone', version=[['DEVICEA', 2], ['DEVICEB', 1]]),
        'nfd-name': rec(path='cafe\u0301', bsize=131072),
        'long-name': rec(path='n' * 255, bsize=131072),
        'name-256': rec(path='n' * 256, bsize=131072),
        'dotdot': rec(path='../x', bsize=131072),
        'in-state-dir': rec(path='.shoal/index.db', bsize=131072),
        'blocks-mismatch': rec(size=10, bsize=131072, blocks=b''),
        'bad-bsize': rec(size=10, bsize=100000, blocks=b'\x00' * 32),
        'version-unsorted': rec(bsize=131072, version=[['B', 1], ['A', 1]]),
        'version-zero': rec(bsize=131072, version=[['A', 0]]),
        'mode-too-big': rec(bsize=131072, mode=0o10000),
        'extra-key': rec(bsize=131072, extra=1),
        'not-a-dict': b'l4:spame',
        'unsorted-keys': b'd4:path1:x6:blocks0:e',
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + '.bencode'), 'wb') as f:
            f.write(data)


def sync_message_seeds(out):
    """Sync channel messages (bencoded, type "t"): each type valid, and each rule broken."""

    def enc(v):
        if isinstance(v, int): return b'i%de' % v
        if isinstance(v, str): v = v.encode()
        if isinstance(v, bytes): return b'%d:%s' % (len(v), v)
        if isinstance(v, list): return b'l' + b''.join(enc(x) for x in v) + b'e'
        if isinstance(v, dict):
            return b'd' + b''.join(enc(k) + enc(v[k]) for k in sorted(v)) + b'e'
        raise TypeError(v)

    rec = b'd4:path5:a.txt4:typei0ee'
    breq = {'t': 'breq', 'id': 7, 'path': 'docs/a.bin', 'block': 3, 'hash': b'\x22' * 32, 'off': 0, 'len': 131072}
    cases = {
        'have': {'t': 'have', 'seq': 42},
        'ireq': {'t': 'ireq', 'since': 0},
        'index-empty-done': {'t': 'index', 'recs': [], 'done': 1},
        'index-two': {'t': 'index', 'recs': [[rec, b'\x01' * 64, 1], [rec, b'\x02' * 64, 2]], 'done': 0},
        'breq': breq,
        'block-data': {'t': 'block', 'id': 7, 'data': b'\x00\xff' * 100},
        'block-err': {'t': 'block', 'id': 7, 'err': 'no such block'},
        'have-extra-key': {'t': 'have', 'seq': 1, 'x': 'y'},
        'have-negative': {'t': 'have', 'seq': -1},
        'unknown-type': {'t': 'hello'},
        'no-type': {'seq': 1},
        'index-short-sig': {'t': 'index', 'recs': [[rec, b'\x01' * 63, 1]], 'done': 1},
        'index-seq-zero': {'t': 'index', 'recs': [[rec, b'\x01' * 64, 0]], 'done': 1},
        'index-done-2': {'t': 'index', 'recs': [], 'done': 2},
        'breq-len-0': dict(breq, len=0),
        'breq-hash-31': dict(breq, hash=b'\x22' * 31),
        'breq-len-past-chunk': dict(breq, len=1024 * 1024 + 1),
        'block-neither': {'t': 'block', 'id': 1},
        'block-empty-err': {'t': 'block', 'id': 1, 'err': ''},
    }
    for name, v in cases.items():
        with open(os.path.join(out, name + '.bencode'), 'wb') as f:
            f.write(enc(v))
    for name, data in {'not-a-dict': b'li1ee', 'unsorted-keys': b'd3:seqi1e1:t4:havee', 'deep': b'd1:tl' * 5,
                       'truncated': enc({'t': 'have', 'seq': 4})[:-3]}.items():
        with open(os.path.join(out, name + '.bencode'), 'wb') as f:
            f.write(data)


MAKERS = {"bencode": bencode_seeds, "metainfo": metainfo_seeds, "magnet": magnet_seeds,
          "sync_key": sync_key_seeds, "sync_record": sync_record_seeds, "sync_message": sync_message_seeds}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(MAKERS):
        target = os.path.join(CORPUS, name)
        os.makedirs(target, exist_ok=True)
        MAKERS[name](target)
