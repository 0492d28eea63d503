"""Write a plan out as nftables text, through the Jinja2 templates under ``templates/``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from .plan import MASQUERADE_MARK, REJECT_CHAIN, Ruleset

# kernel-notes.md: one `add element` with tens of thousands of elements fails with ENOBUFS;
# several commands in the same file are still one transaction.
ELEMENT_CHUNK = 1000


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


def render_nft(ruleset: Ruleset) -> str:
    """The ruleset as one nft script (one atomic transaction when loaded with ``nft -f``)."""
    template = _environment().get_template("ruleset.nft.j2")
    return template.render(
        ruleset=ruleset,
        mark_hex=f"0x{MASQUERADE_MARK:08x}",
        reject_chain=REJECT_CHAIN,
        element_chunk=ELEMENT_CHUNK,
    )
