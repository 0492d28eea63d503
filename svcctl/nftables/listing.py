"""Rulesets in one comparable form, for ``diff``: the kernel's own listing, normalized.

``diff`` compares like with like: the live tables' listing against the listing the plan predicts
(svcctl.nftables.render.listing: the templates write rules in the kernel's own form, and
tests/test_golden.py proves the prediction against the kernel for every golden case). Both are
normalized the same way: objects sorted by kind and name
(the kernel lists them in creation order, which depends on the history of applies), elements
one per line and sorted (hash sets list in hash order), and the elements of dynamic sets left
out: session-affinity entries are state, not configuration.
"""

from __future__ import annotations

import difflib
import re

_BLOCK_START = re.compile(r"^\t(set|map|chain) (\S+) \{$")
_KIND_ORDER = {"set": 0, "map": 0, "chain": 1}


def normalize(listing: str) -> str:
    """``nft list table`` text -> a canonical text of the same table."""
    out: list[str] = []
    blocks: list[tuple[tuple[int, str], list[str]]] = []
    current: list[str] | None = None
    header: list[str] = []
    lines = listing.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _BLOCK_START.match(line)
        if match:
            current = [line]
            blocks.append(((_KIND_ORDER[match[1]], match[2]), current))
        elif current is not None and line == "\t}":
            current.append(line)
            current = None
        elif current is not None and line.strip().startswith("elements = {"):
            body = line.strip()[len("elements = {"):]
            while not body.rstrip().endswith("}"):
                i += 1
                body += " " + lines[i].strip()
            elements = [e.strip() for e in body.rstrip()[:-1].split(",") if e.strip()]
            if not any("flags dynamic" in x or "flags timeout" in x for x in current):
                current.append("\t\telements = {")
                current.extend(f"\t\t\t{e}" for e in sorted(elements))
                current.append("\t\t}")
        elif current is not None:
            if line.strip():
                current.append(line)
        elif line.strip() and line != "}":
            header.append(line)
        i += 1
    out.extend(header)
    for _, block in sorted(blocks, key=lambda b: b[0]):
        out.extend(block)
    if header:
        out.append("}")
    return "\n".join(out) + "\n" if out else ""


def unified_diff(live: str, planned: str) -> str:
    return "".join(
        difflib.unified_diff(
            live.splitlines(keepends=True), planned.splitlines(keepends=True), fromfile="live", tofile="planned"
        )
    )
