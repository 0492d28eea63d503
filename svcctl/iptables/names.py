"""Names of the chains svcctl makes per Service port and endpoint, and rule comments.

``SVCCTL-<KIND>-<HASH16>``: deterministic, within iptables' 28 characters, as kube-proxy names
its chains (``KUBE-SVC-<HASH16>``) but with svcctl's prefix. The hash covers the Service port's
identity (and the endpoint's, for SEP chains), not the rules: an apply reads the live rules
back and rewrites a chain whose rules differ, so a name can stay while its content changes,
which keeps the session-affinity lists (named after SEP chains) across re-applies.
"""

from __future__ import annotations

from typing import Iterable

from ..digest import sha256_base32
from .frame import NAME_MAX, PREFIX

COMMENT_MAX = 255  # iptables silently cuts longer comments (measured): the read-back would differ


def _hash16(text: str) -> str:
    """The first 80 bits of the text's SHA-256 in base32: 16 characters."""
    return sha256_base32(text, 16)


def chain_name(kind: str, ident: str) -> str:
    """``ident``: a Service port's ident (plan.PortRef.ident), or that and an endpoint."""
    name = f"{PREFIX}{kind}-{_hash16(ident)}"
    assert len(name) <= NAME_MAX, name
    return name


def comment(label: str, what: str = "") -> str:
    """``ns/name:port/proto what``, within iptables' limit: the Service part is shortened if
    needed (names at the API's limits still fit: 63 + 63 + 15 characters)."""
    room = COMMENT_MAX - (len(what) + 1 if what else 0)
    if len(label) > room:
        label = label[: room - 3] + "..."
    return f"{label} {what}".strip()


def comments(label: str, whats: Iterable[str]) -> list[str]:
    """``comment(label, what)`` for each of ``whats`` (none empty): one concatenation in C each
    when none needs shortening, as for a cascade's ``-> endpoint`` comments (100,000 of them at
    10,000 Services x 10 endpoints)."""
    whats = list(whats)
    if whats and len(label) + 1 + max(map(len, whats)) > COMMENT_MAX:
        return [comment(label, what) for what in whats]
    return list(map(f"{label} ".__add__, whats))
