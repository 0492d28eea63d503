"""Problems found in the input, and how they are reported.

Every stage before the kernel collects problems instead of raising at the first one, so that
a user sees everything wrong with a manifest at once, one line each, in the contract's format:
``FILE:LINE: KIND NAMESPACE/NAME: FIELD.PATH: message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .load import Origin

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("spec", "ports", 0, "port")`` -> ``spec.ports[0].port``, as the API server prints it."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def show_value(value: Any) -> str:
    """A value as the API server shows it in a message: strings quoted, JSON's true/false."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return "object" if isinstance(value, dict) else "list"
    return str(value)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    ``origin`` locates the object (and through ``path`` the field) in its file; objects that are
    not known (a file that does not parse) give ``file`` and ``line`` directly.
    """

    message: str
    path: Path = ()
    origin: "Origin | None" = None
    kind: str = ""
    ref: str = ""  # namespace/name
    file: str = ""
    line: int | None = None

    def location(self) -> tuple[str, int]:
        """File name and line (0 when unknown)."""
        if self.origin is not None:
            return self.origin.source.name, self.origin.line_of(self.path)
        return self.file, self.line or 0

    def render(self) -> str:
        file, line = self.location()
        parts = [f"{file}:{line}" if line else file]
        if self.kind:
            parts.append(f"{self.kind} {self.ref}")
        if self.path:
            parts.append(format_path(self.path))
        parts.append(self.message)
        return ": ".join(parts)


class InvalidInput(Exception):
    """Raised with every problem found, once a stage cannot go on (exit status 2)."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the input")

    def lines(self, limit: int | None = None) -> list[str]:
        """One line per problem, in file order (stable: problems on one line keep their order);
        with ``limit``, the first ``limit`` of them and a line saying how many more there are."""
        ordered = sorted(self.problems, key=Problem.location)
        shown = ordered if limit is None else ordered[:limit]
        lines = [p.render() for p in shown]
        if len(shown) < len(ordered):
            lines.append(f"svcctl: ... and {len(ordered) - len(shown)} more problem(s) (--all-problems lists them all)")
        return lines
