"""nftables objects and transactions as nft text, through the Jinja2 templates under
``templates/nftables/``. Rendering cannot fail on valid input: every string was validated or
generated before."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache
from typing import Iterable, NamedTuple

import jinja2

from ..templating import environment
from .frame import C, MARKER_PREFIX, MASQUERADE_MARK, TABLE_COMMENT, S
from .objects import Element, Family, Ruleset, Table, Verdict
from .transaction import LoadTable, Operation

# docs/kernel-notes.md: one `add element` with tens of thousands of elements fails with ENOBUFS;
# several commands in the same file are still one transaction.
ELEMENT_CHUNK = 1000


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = environment("nftables")
    env.filters["duration"] = duration
    env.filters["element_texts"] = element_texts
    mark_hex = f"0x{MASQUERADE_MARK:08x}"
    env.globals.update(
        S=S, C=C, table_comment=TABLE_COMMENT, mark_hex=mark_hex, mark=f"meta mark set meta mark | {mark_hex}", element_chunk=ELEMENT_CHUNK, marker=frame_name
    )
    return env


def duration(seconds: int) -> str:
    """A timeout as nft lists it (``10800`` -> ``3h``, ``90`` -> ``1m30s``): rules are written in
    the kernel's own form, so that a listing compares with the plan line by line."""
    parts, rest = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def element_texts(elements: Iterable[Element], verdicts: bool = True) -> list[str]:
    """Set elements as nft writes them (``10.96.0.10 . tcp . 80 : goto svc-...``); the keys
    alone without ``verdicts`` (``delete element``). A filter over a whole list, since a ruleset
    has 10,000s of elements: written per element in a template loop (a Python call for each
    attribute, filter and loop.last), they took 50 ms of the 10k-Service render; here 10 ms."""
    dotted = " . ".join
    if not verdicts:
        return [dotted(el.key) for el in elements]
    return [f"{dotted(el.key)} : {_verdict_text(el.verdict)}" if el.verdict else dotted(el.key) for el in elements]


def _verdict_text(v: Verdict) -> str:
    return f"{v.kind.value} {v.chain}" if v.chain else v.kind.value


def frame_name(table: Table) -> str:
    """Name of the empty marker set that identifies a table's frame: its hook chains and the
    declarations of its sets, which an incremental apply cannot change in place. It hashes the
    frame's text, so another frame (other node options, another svcctl version with another
    frame) has another name, and template edits elsewhere do not change it."""
    bare = replace(table, name="", sets=tuple(replace(s, elements=()) for s in table.static_sets), endpoint_chains=(), external_chains=())
    return _frame_name(bare)


@lru_cache(maxsize=16)
def _frame_name(bare: Table) -> str:
    text = str(_environment().get_template("objects.nft.j2").module.frame_text(bare))  # type: ignore[attr-defined]
    return f"{MARKER_PREFIX}{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class Section(NamedTuple):
    """One part of the rendered ruleset: a table's frame, or what its Service ports add."""

    table: Table
    frame: bool
    text: str

    @property
    def variant(self) -> str:
        """What the frame's text depends on, in words (goldens name frames by it)."""
        t = self.table
        return f"{t.scope}, masquerade {t.masquerade.value}, nodeport-addresses {'set' if t.nodeport_cidrs else 'unset'}"


def sections(ruleset: Ruleset) -> list[Section]:
    """The ruleset's parts, in order: their texts joined are the ruleset's text (without its
    header line). Goldens keep each frame once and each case's Service ports."""
    module = _environment().get_template("objects.nft.j2").module
    out = []
    for t in ruleset.tables:
        out.append(Section(t, True, str(module.frame_section(t, frame_name(t)))))  # type: ignore[attr-defined]
        out.append(Section(t, False, str(module.ports_section(t))))  # type: ignore[attr-defined]
    return out


def listing(table: Table) -> str:
    """The table as `nft list table` would print it once loaded (before normalization)."""
    module = _environment().get_template("objects.nft.j2").module
    return str(module.listing(table, frame_name(table)))  # type: ignore[attr-defined]


def render(operations: Iterable[Operation], header: bool = False) -> str:
    """Operations as one nft script: one atomic transaction when loaded with ``nft -f``."""
    template = _environment().get_template("transaction.nft.j2")
    return template.render(operations=tuple(operations), header=header)


def render_probe_table(table: str, family: Family, source: str, destination: str, protocol: str, port: int) -> str:
    """``svcctl trace --kernel``'s table: tracing on for the probe packets, before any other
    chain sees them (templates/nftables/probe.nft.j2)."""
    return _environment().get_template("probe.nft.j2").render(
        table=table, family=family.value, source=source, destination=destination, protocol=protocol, port=port
    )


def render_ruleset(ruleset: Ruleset) -> str:
    """The whole ruleset (``svcctl compile``): loads into an empty kernel or onto svcctl's live
    tables of the same frame."""
    return render((LoadTable(t) for t in ruleset.tables), header=True)
