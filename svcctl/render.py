"""Write a plan out as nftables text, through the Jinja2 templates under ``templates/``."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import jinja2

from .plan import MASQUERADE_MARK, REJECT_CHAIN, Ruleset, Table

# kernel-notes.md: one `add element` with tens of thousands of elements fails with ENOBUFS;
# several commands in the same file are still one transaction.
ELEMENT_CHUNK = 1000
_TEMPLATES = ("ruleset.nft.j2", "objects.nft.j2", "update.nft.j2")


def _template_dir() -> Path:
    """templates/ ships inside the package in a wheel; in a checkout it is beside the package."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_template_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # nft text, not HTML; every string in it is validated or generated
    )


@lru_cache(maxsize=1)
def _templates_digest() -> bytes:
    return hashlib.sha256(b"".join((_template_dir() / name).read_bytes() for name in _TEMPLATES)).digest()


def frame_name(table: Table) -> str:
    """Name of the empty marker set that identifies a table's frame: its hook chains and the
    declarations of its sets, which an incremental apply cannot change in place. The name
    hashes the templates and everything in the plan the frame depends on, so a different
    frame (other node options, another svcctl version) means a different name."""
    frame = (
        table.family.value, table.name, table.masquerade.value, table.nodeport_cidrs,
        [(s.name, s.key_type, s.is_map, s.interval, s.comment) for s in table.static_sets],
    )
    digest = hashlib.sha256(_templates_digest() + repr(frame).encode()).hexdigest()
    return f"frame-{digest[:16]}"


def _common() -> dict[str, Any]:
    return {"mark_hex": f"0x{MASQUERADE_MARK:08x}", "reject_chain": REJECT_CHAIN, "element_chunk": ELEMENT_CHUNK}


def render_nft(ruleset: Ruleset) -> str:
    """The ruleset as one nft script (one atomic transaction when loaded with ``nft -f``)."""
    template = _environment().get_template("ruleset.nft.j2")
    return template.render(ruleset=ruleset, frames=[frame_name(t) for t in ruleset.tables], **_common())


def render_update(updates: Sequence[Any]) -> str:
    """An incremental transaction (svcctl.sync.TableUpdate objects) as one nft script."""
    return _environment().get_template("update.nft.j2").render(updates=updates, **_common())
