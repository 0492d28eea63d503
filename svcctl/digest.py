"""Short, stable hashes for the names svcctl gives kernel objects (both back ends)."""

from __future__ import annotations

import hashlib

# RFC 4648 base32, two characters (10 bits) at a time: base64.b32encode is pure Python in 3.11,
# and a layout names a chain or more per Service port (21,000 names at 10,000 Services).
_PAIRS = tuple(a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def sha256_base32(text: str, length: int) -> str:
    """The first ``length`` characters (a multiple of 8: 40 bits each) of the base32 of the
    text's SHA-256, as ``base64.b32encode(digest[:length * 5 // 8])`` writes them."""
    digest = hashlib.sha256(text.encode()).digest()
    out: list[str] = []
    for start in range(0, length * 5 // 8, 5):
        n = int.from_bytes(digest[start : start + 5])
        out += (_PAIRS[n >> 30], _PAIRS[n >> 20 & 1023], _PAIRS[n >> 10 & 1023], _PAIRS[n & 1023])
    return "".join(out)
