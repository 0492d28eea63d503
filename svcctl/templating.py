"""The Jinja2 environment every back end renders its text with, from ``templates/<back end>/``."""

from __future__ import annotations

from pathlib import Path

import jinja2


def template_dir(backend: str) -> Path:
    """templates/ ships inside the package in a wheel; in a checkout it is beside the package."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return (packaged if packaged.is_dir() else here.parent / "templates") / backend


def environment(backend: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir(backend)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # rules, not HTML; every string in them is validated or generated
    )
