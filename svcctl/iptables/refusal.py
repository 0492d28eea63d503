"""What to tell a user when iptables-restore refuses an input: its reason, the line it points at,
and the Service port that line belongs to (svcctl knows which port each chain was made for).

iptables-restore words its errors in several ways (measured, 1.8.9):
- ``iptables-restore v1.8.9 (legacy): Couldn't load target `X'...`` then ``Error occurred at line: 3``;
- ``iptables-nft-restore v1.8.9 (nf_tables): `` then ``line 3: RULE_APPEND failed (Invalid argument): rule in chain X``;
- ``iptables-restore: line 4 failed`` (legacy, at COMMIT: no reason given).
Errors found at commit point at the COMMIT line; the chain named in the message tells then.
"""

from __future__ import annotations

import re

from ..kernel import Refused
from .frame import PREFIX

_PROGRAM = re.compile(r"^\S*tables\S*-restore(?: v[\d.]+ \([^)]*\))?: ?")
_LINE = re.compile(r"^line (\d+)(?: failed)?:? ?(.*)$")
_AT = re.compile(r"^Error occurred at line: (\d+)$")
_CHAIN = re.compile(rf"{re.escape(PREFIX)}[A-Z0-9-]+")


class IptablesRefused(Refused):
    """iptables-restore refused an input. The message is complete (see ``describe``)."""

    def describe(self) -> str:
        return str(self)


def _owner_text(ident: str) -> str:
    namespace, name, proto, port = ident.split("/")
    return f"Service {namespace}/{name} port {port}/{proto}"


def describe(error: str, script: str, what: str, owners: dict[str, str], changed: bool) -> str:
    """``what``: which input (``iptables nat``); ``owners``: chain -> the Service port it was made
    for (PortRef.ident); ``changed``: whether tables committed before this one could not be put
    back."""
    reasons, number = [], 0
    for raw in error.splitlines():
        text = _PROGRAM.sub("", raw.strip()).strip()
        if not text or text.startswith("Try `"):
            continue
        at = _AT.match(text)
        line = _LINE.match(text)
        if at:
            number = int(at[1])
        elif line:
            number = int(line[1])
            reasons += [line[2]] if line[2] else []
        else:
            reasons.append(text.rstrip(":"))
    lines = script.splitlines()
    quoted = lines[number - 1] if 0 < number <= len(lines) else ""
    chain = quoted.split(" ", 2)[1] if quoted.startswith(("-A ", "-I ", "-X ", "-D ")) else ""
    names = [chain] if chain in owners else [n for n in _CHAIN.findall(" ".join(reasons)) if n in owners]
    owner = f" ({_owner_text(owners[names[0]])})" if names else ""
    where = f" at line {number} of the {what} input" + (f": {quoted}" if quoted and quoted != "COMMIT" else "")
    outcome = "some rules of an earlier table could not be put back, run apply again" if changed else "nothing was changed"
    # A chain still jumped to cannot be deleted: by svcctl's own rules that is impossible (they
    # go first), so by a rule someone else wrote (iptables-nft says "Device or resource busy",
    # iptables-legacy only that the -X line failed).
    busy = any("busy" in r for r in reasons) or (not reasons and quoted.startswith("-X "))
    named = chain or next(iter(_CHAIN.findall(" ".join(reasons))), "the chain")
    hint = f"; a rule svcctl did not write may still jump to {named}: find it with {what.split()[0]}-save" if busy else ""
    return f"iptables refused the rules, {outcome}: {'; '.join(reasons) or 'iptables-restore gave no reason'}{where if number else ''}{owner}{hint}"
