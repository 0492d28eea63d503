"""The name hashes: base32 written two characters at a time, exactly as base64.b32encode does."""

from __future__ import annotations

import base64
import hashlib

import pytest

from svcctl.digest import sha256_base32


@pytest.mark.parametrize("length", [8, 16])
@pytest.mark.parametrize("text", ["", "ns/svc/tcp/http", "fd00::1 10.0.0.1:80 ä", "x" * 1000])
def test_sha256_base32_is_b32encode_of_the_digest(text, length):
    digest = hashlib.sha256(text.encode()).digest()
    assert sha256_base32(text, length) == base64.b32encode(digest[: length * 5 // 8]).decode()


def test_every_character_pair_is_reached():
    # 4,096 texts reach each of the 1,024 pairs in some position: a wrong entry would show.
    texts = [str(i) for i in range(4096)]
    for text in texts:
        digest = hashlib.sha256(text.encode()).digest()
        assert sha256_base32(text, 16) == base64.b32encode(digest[:10]).decode()
