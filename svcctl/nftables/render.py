"""nftables objects and transactions as nft text, through the Jinja2 templates under
``templates/nftables/``. Rendering cannot fail on valid input: every string was validated or
generated before."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache
from typing import Iterable

import jinja2

from ..templating import environment
from .frame import C, MARKER_PREFIX, MASQUERADE_MARK, TABLE_COMMENT, S
from .objects import Ruleset, Table
from .transaction import LoadTable, Operation

# docs/kernel-notes.md: one `add element` with tens of thousands of elements fails with ENOBUFS;
# several commands in the same file are still one transaction.
ELEMENT_CHUNK = 1000


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = environment("nftables")
    mark_hex = f"0x{MASQUERADE_MARK:08x}"
    env.globals.update(
        S=S, C=C, table_comment=TABLE_COMMENT, mark_hex=mark_hex, mark=f"meta mark set meta mark | {mark_hex}", element_chunk=ELEMENT_CHUNK, marker=frame_name
    )
    return env


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


def render(operations: Iterable[Operation], header: bool = False) -> str:
    """Operations as one nft script: one atomic transaction when loaded with ``nft -f``."""
    template = _environment().get_template("transaction.nft.j2")
    return template.render(operations=tuple(operations), header=header)


def render_ruleset(ruleset: Ruleset) -> str:
    """The whole ruleset (``svcctl compile``): loads into an empty kernel or onto svcctl's live
    tables of the same frame."""
    return render((LoadTable(t) for t in ruleset.tables), header=True)
