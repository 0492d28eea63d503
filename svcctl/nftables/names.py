"""Names and comments of the objects svcctl makes per Service port.

``<kind>-<HASH8>-<ns>/<name>/<proto>/<port>``: readable, unique by the hash, within nft's limit.
A chain's hash also covers its rules: when the rules change, so does the name, and an apply can
tell what changed from the live chain names alone (svcctl.nftables.decide).
"""

from __future__ import annotations

from ..digest import sha256_base32

NAME_MAX = 255  # nft refuses longer chain and set names (measured: 256 gives ERANGE)
COMMENT_MAX = 128  # and longer comments ("comment too long, 128 characters maximum allowed")


def _hash8(text: str) -> str:
    """The first 40 bits of the text's SHA-256 in base32: 8 characters."""
    return sha256_base32(text, 8)


def object_name(kind: str, ident: str, content: object = None) -> str:
    """The hash covers ``ident`` and, for chains, their ``content``. Every part of ``ident`` is a
    DNS label, a protocol name, a number or an IP address (with ':' written as '.', which nft
    refuses in set names)."""
    readable = ident.replace(":", ".")
    name = f"{kind}-{_hash8(ident if content is None else f'{ident} {content!r}')}-{readable}"
    return name[:NAME_MAX]


def comment(label: str, what: str = "") -> str:
    """``ns/name:port/proto what``, within nft's limit: the Service part is shortened if needed."""
    room = COMMENT_MAX - (len(what) + 1 if what else 0)
    if len(label) > room:
        label = label[: room - 3] + "..."
    return f"{label} {what}".strip()
