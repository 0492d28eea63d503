"""Colour for people at a terminal: only when the output is one, never with NO_COLOR set
(https://no-color.org) or TERM=dumb. Pipes and files get the plain text, byte for byte."""

from __future__ import annotations

import os
from typing import TextIO

_RESET = "\033[0m"
_DIFF = (("+++", "\033[1m"), ("---", "\033[1m"), ("@@", "\033[36m"), ("#", "\033[1m"), ("+", "\033[32m"), ("-", "\033[31m"))


def enabled(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def diff(text: str) -> str:
    """A unified diff with its summary lines, coloured line by line."""
    out = []
    for line in text.splitlines(keepends=True):
        colour = next((c for prefix, c in _DIFF if line.startswith(prefix)), None)
        body = line.rstrip("\n")
        out.append(f"{colour}{body}{_RESET}{line[len(body):]}" if colour else line)
    return "".join(out)


def header(table: str) -> str:
    """A table with its first line (the column names) in bold."""
    first, _, rest = table.partition("\n")
    return f"\033[1m{first}{_RESET}\n{rest}"
