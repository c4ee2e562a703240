#!/usr/bin/env python3
"""An independent verifier of FlowLoom evidence bundles, written from libs/ledger/BUNDLE-FORMAT.md
alone (no FlowLoom code), with the Python 3 standard library only. Ed25519 is not in the standard
library, so it is implemented here from RFC 8032 (section 5.1.7, verification only).

Usage: verify_bundle.py DIR [--key FILE]
  --key FILE  the auditor's trusted verifier keys (default: the bundle's own public-key file,
              which proves integrity, not origin: BUNDLE-FORMAT.md section 2.3).
Exit 0 and "OK: ..." when the bundle verifies; exit 1 with one "problem: ..." line per problem and
"First bad entry: I (kind)" when an entry is bad (section 9); exit 2 on bad usage.
"""

import base64
import hashlib
import json
import os
import re
import sys

HASH_LEN = 32


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def strict_b64(text):
    """Standard base64 with padding, rejecting any other spelling of the same bytes (section 2.2)."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) or len(text) % 4:
        raise ValueError("not canonical base64: %r" % (text[:40],))
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64: %r" % (text[:40],))
    return raw


def b64_hash(text):
    raw = strict_b64(text)
    if len(raw) != HASH_LEN:
        raise ValueError("a hash is %d bytes, not 32" % len(raw))
    return raw


# --- Ed25519 verification (RFC 8032 section 5.1.7; cofactorless check as in section 6) ---

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(p1, p2):
    a = (p1[1] - p1[0]) * (p2[1] - p2[0]) % P
    b = (p1[1] + p1[0]) * (p2[1] + p2[0]) % P
    c = 2 * p1[3] * p2[3] * D % P
    d = 2 * p1[2] * p2[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, point)
        point = _add(point, point)
        s >>= 1
    return q


def _equal(p1, p2):
    return (p1[0] * p2[2] - p2[0] * p1[2]) % P == 0 and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _decompress(data):
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
BASE = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return _equal(_mul(s, BASE), _add(r, _mul(h, a)))


# --- Keys (section 2.3) ---

def parse_verifier_key(text):
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is name+keyid+base64: %r" % text)
    name, key_id, blob = parts
    if not name or " " in name:
        raise ValueError("bad key name %r" % name)
    raw = strict_b64(blob)
    if len(raw) != 33 or raw[0] != 0x01:
        raise ValueError("key %s is not an Ed25519 key (0x01 + 32 bytes)" % name)
    public = raw[1:]
    expected = sha256(name.encode("utf-8") + b"\n" + b"\x01" + public)[:4].hex()
    if not re.fullmatch(r"[0-9a-f]{8}", key_id) or key_id != expected:
        raise ValueError("key %s: key id %s does not match its key (%s)" % (name, key_id, expected))
    return {"name": name, "key_id": bytes.fromhex(key_id), "public": public}


def parse_key_file(text):
    keys = []
    for line in text.split("\n"):
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(parse_verifier_key(line))
    if not keys:
        raise ValueError("no verifier key")
    return keys


# --- Checkpoints (section 3) ---

def open_checkpoint(note, keys):
    """The (origin, size, root) a valid signed note commits to; raises ValueError otherwise."""
    if any(ord(c) < 0x20 and c != "\n" or ord(c) == 0x7F for c in note):
        raise ValueError("the checkpoint contains control characters")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise ValueError("the checkpoint has no blank line before its signatures")
    text = note[: cut + 1]
    signatures = note[cut + 2 :]
    if not signatures.endswith("\n"):
        raise ValueError("the signature block does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError("a checkpoint has an origin, a size and a root hash")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin or not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise ValueError("bad checkpoint origin or size")
    if any(not ext for ext in lines[3:]):
        raise ValueError("an empty extension line")
    root = b64_hash(root_text)
    verified = False
    for line in signatures[:-1].split("\n"):
        m = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if not m:
            raise ValueError("bad signature line %r" % line[:60])
        name, blob = m.group(1), strict_b64(m.group(2))
        if len(blob) < 5:
            raise ValueError("a signature line is too short")
        for key in keys:
            if key["name"] == name and key["key_id"] == blob[:4]:
                if len(blob) != 68 or not ed25519_verify(key["public"], text.encode("utf-8"), blob[4:]):
                    raise ValueError("the signature of key %s+%s does not verify" % (name, blob[:4].hex()))
                verified = True
    if not verified:
        raise ValueError("no signature by a known key")
    return origin, int(size_text), root


# --- RFC 9162 proofs (sections 2.1.3.2 and 2.1.4.2) ---

def verify_inclusion(index, size, leaf, path, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, path, root1, root2):
    if size1 > size2:
        return False
    if size1 == size2:
        return not path and root1 == root2
    if size1 == 0:
        # Every tree extends the empty one; the proof is empty (RFC 9162 defines proofs for 0 < m < n).
        return not path and root1 == sha256(b"")
    if not path:
        return False
    if size1 & (size1 - 1) == 0:
        path = [root1] + list(path)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


class StreamingRoot:
    """MTH in one pass with a stack of (height, hash) (section 2.1)."""

    def __init__(self):
        self.stack = []
        self.count = 0

    def push(self, leaf):
        self.count += 1
        height, h = 0, leaf
        while self.stack and self.stack[-1][0] == height:
            h = node_hash(self.stack.pop()[1], h)
            height += 1
        self.stack.append((height, h))

    def root(self):
        if not self.stack:
            return sha256(b"")
        acc = self.stack[-1][1]
        for _, h in reversed(self.stack[:-1]):
            acc = node_hash(h, acc)
        return acc


def merkle_root(leaves):
    stream = StreamingRoot()
    for leaf in leaves:
        stream.push(leaf)
    return stream.root()


# --- Entries (section 4) and locating the first bad one (section 9) ---

MARKER = re.compile(rb'\{"\$pruned":"([0-9a-f]{64})"\}')


def read_lines(data):
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def line_hash(line):
    m = MARKER.fullmatch(line)
    return bytes.fromhex(m.group(1).decode("ascii")) if m else leaf_hash(line)


def first_bad(expected, actual):
    n, m = len(expected), len(actual)
    for i in range(min(n, m)):
        if expected[i] != actual[i]:
            later_e = any(expected[j] == actual[i] for j in range(i + 1, n))
            later_a = any(actual[k] == expected[i] for k in range(i + 1, m))
            if later_a and not later_e:
                return i, "inserted"
            if later_e and not later_a:
                return i, "deleted"
            return i, "reordered" if later_a and later_e else "changed"
    if m < n:
        return m, "truncated"
    if m > n:
        return n, "inserted"
    return None


def verify(bundle, key_file=None):
    """Returns (problems, first bad entry or None, summary)."""
    read = lambda name: open(os.path.join(bundle, name), "rb").read()
    keys = parse_key_file((open(key_file, "rb").read() if key_file else read("public-key")).decode("utf-8"))
    problems = []
    # 1. The checkpoint: nothing is trusted without it.
    try:
        origin, size, root = open_checkpoint(read("checkpoint").decode("utf-8"), keys)
    except (ValueError, UnicodeDecodeError) as error:
        return ["checkpoint: %s" % error], None, None
    # 2. proofs.json.
    proofs, leaf_hashes = None, None
    if os.path.exists(os.path.join(bundle, "proofs.json")):
        try:
            proofs = json.loads(read("proofs.json").decode("utf-8"))
            if proofs.get("format") != "flowloom.audit.proofs.v1" or proofs.get("treeSize") != size:
                problems.append("proofs.json: format or treeSize does not match the checkpoint; ignored")
                proofs = None
            elif "leafHashes" in proofs:
                raw = strict_b64(proofs["leafHashes"])
                if len(raw) != size * HASH_LEN:
                    raise ValueError("leafHashes is not treeSize x 32 bytes")
                leaf_hashes = [raw[i : i + HASH_LEN] for i in range(0, len(raw), HASH_LEN)]
        except (ValueError, UnicodeDecodeError, AttributeError) as error:
            problems.append("proofs.json: %s" % error)
            proofs = None
    # 3. Earlier checkpoints: each a signed prefix consistent with (size, root).
    anchors = {size: [root]}
    for n, item in enumerate((proofs or {}).get("checkpoints", [])):
        try:
            o, s, r = open_checkpoint(item["checkpoint"], keys)
            path = [b64_hash(h) for h in item["consistency"]]
            if o != origin or s > size or not verify_consistency(s, size, path, r, root):
                raise ValueError("not a consistent earlier checkpoint of this log")
            anchors.setdefault(s, []).append(r)
        except (ValueError, KeyError, TypeError) as error:
            problems.append("earlier checkpoint %d: %s" % (n, error))
    # 4. The entries, hashed line by line, with the prefix roots at the anchors' sizes.
    lines = read_lines(read("entries.jsonl"))
    hashes = [line_hash(line) for line in lines]
    stream, matched, mismatched = StreamingRoot(), [0], []
    for i, h in enumerate(hashes):
        stream.push(h)
        if i + 1 in anchors and i + 1 < size:
            (matched if stream.root() in anchors[i + 1] else mismatched).append(i + 1)
    authentic = len(hashes) == size and merkle_root(hashes) == root
    bad = None
    if authentic:
        if leaf_hashes is not None and leaf_hashes != hashes:
            problems.append("proofs.json was altered: its leafHashes differ from the entries")
    elif leaf_hashes is not None and merkle_root(leaf_hashes) == root:
        bad = first_bad(leaf_hashes, hashes)
    else:
        lo = max(matched)
        hi = min(mismatched + [len(hashes), size])
        bad = (lo, "somewhere in %d..%d" % (lo, hi))
    if not authentic:
        problems.append("the entries do not match the signed root")
    # 6. Inclusion proofs.
    for item in (proofs or {}).get("inclusion", []):
        try:
            j = item["index"]
            path = [b64_hash(h) for h in item["proof"]]
            ok = isinstance(j, int) and 0 <= j < size and j < len(hashes)
            if not ok or not verify_inclusion(j, size, hashes[j], path, root):
                raise ValueError("does not verify")
        except (ValueError, KeyError, TypeError) as error:
            problems.append("inclusion proof of entry %s: %s" % (item.get("index"), error))
            if bad is None or (isinstance(item.get("index"), int) and item["index"] < bad[0]):
                bad = (item.get("index"), "inclusion proof fails")
    markers = sum(1 for line in lines if MARKER.fullmatch(line))
    summary = "%d entries (%d markers) of %s, root %s, %d earlier checkpoints" % (
        len(hashes),
        markers,
        origin,
        base64.b64encode(root).decode("ascii"),
        sum(len(v) for v in anchors.values()) - 1,
    )
    return problems, bad, summary


def main(argv):
    args = list(argv)
    key_file = None
    if "--key" in args:
        at = args.index("--key")
        if at + 1 >= len(args):
            print("usage: verify_bundle.py DIR [--key FILE]", file=sys.stderr)
            return 2
        key_file = args[at + 1]
        del args[at : at + 2]
    if len(args) != 1:
        print("usage: verify_bundle.py DIR [--key FILE]", file=sys.stderr)
        return 2
    try:
        problems, bad, summary = verify(args[0], key_file)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        print("problem: %s" % error)
        return 1
    for problem in problems:
        print("problem: %s" % problem)
    if bad is not None:
        print("First bad entry: %s (%s)" % bad)
    if problems or bad is not None:
        return 1
    print("OK: %s" % summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
