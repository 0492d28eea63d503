"""What to tell a user when nft refuses a transaction: its message, the line it points at, and
the Service port that line belongs to (names of per-port objects carry it)."""

from __future__ import annotations

import re

from ..kernel import Refused
from .frame import AFFINITY, PORT_CHAIN_KINDS

_OWNER = re.compile(
    rf"\b(?:{'|'.join((*PORT_CHAIN_KINDS, AFFINITY))})-[A-Z2-7]{{8}}-([a-z0-9.-]+)/([a-z0-9.-]+)/(tcp|udp|sctp)/([a-z0-9-]+)"
)
# nft's error: "<file>:<line>:<column>[-<column>]: Error: ..."
_POSITION = re.compile(r"\S+:(\d+):\d+(?:-\d+)?: (.*)")


class NftRefused(Refused):
    """nft refused a transaction: its message points at a line of the script."""

    def describe(self) -> str:
        return describe(self)


def culprit(refused: Refused) -> str | None:
    """Which Service port the rule nft refused belongs to, from the line its error points at."""
    match = _POSITION.search(str(refused))
    if not match:
        return None
    lines = refused.script.splitlines()
    line = int(match[1]) - 1
    for text in reversed(lines[max(0, line - 2000) : line + 1]):  # the line itself, else its chain's header
        owner = _OWNER.search(text)
        if owner:
            ns, name, proto, port = owner.groups()
            return f"Service {ns}/{name} port {port}/{proto}"
        if text.startswith(("table ", "add element", "delete ")) or text.strip().startswith("chain "):
            break
    return None


def describe(err: Refused) -> str:
    """nft's message, the line of the transaction it points at, and the Service port that line
    belongs to. (nft names the in-memory file it read: the line is quoted instead.)"""
    owner = culprit(err)
    first = str(err).splitlines()[0] if str(err) else "the kernel refused the ruleset"
    where = _POSITION.match(first)
    if where:
        number = int(where[1])
        lines = err.script.splitlines()
        quoted = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        first = f"{where[2]} at line {number} of the transaction" + (f": {quoted}" if quoted else "")
    return f"the kernel refused the ruleset, nothing was changed: {first}" + (f" ({owner})" if owner else "")
