"""Problems found in the input, and how they are reported.

Every stage before the kernel collects problems instead of raising at the first one, so that
a user sees everything wrong with a manifest at once, one line each, in the contract's format:
``FILE:LINE: KIND NAMESPACE/NAME: FIELD.PATH: message``.

A user's text reaches a message only through ``quote`` (Go's %q, as the API server shows values)
or ``plain``: a name holding a newline or a terminal escape can neither split a problem over two
lines, forge a ``FILE:LINE:`` line of its own, nor colour the terminal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .load import Origin

Path = tuple[str | int, ...]


class Key(str):
    """A map key in a field path (a label, a selector, an annotation): printed ``[key]``, as the
    API server prints it, where a field is printed ``.field``."""

    __slots__ = ()


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _escape(ch: str) -> str:
    """One character as Go's strconv.Quote writes it."""
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():  # Python's and Go's (unicode.IsPrint) notion agree: letters, marks, numbers, symbols, ' '
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was no UTF-8, as Python keeps it in a file name
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quote(text: str) -> str:
    """``text`` in double quotes, escaped as Go's %q: ``"a\\nb"``, ``"\\x1b[31m"``."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(map(_escape, text)) + '"'


_PLAIN = re.compile(r"[-A-Za-z0-9_./]+\Z")
_PLAIN_REF = re.compile(r"[-A-Za-z0-9_.]*(/[-A-Za-z0-9_.]*)?\Z")


def plain(text: str) -> str:
    """``text`` as it is when it holds only letters, digits and ``-_./`` (every name and field the
    API knows), else quoted."""
    return text if _PLAIN.match(text) else quote(text)


def show_ref(ref: str) -> str:
    """An object's ``namespace/name`` (or ``name``), quoted as a whole unless it is plain."""
    return ref if _PLAIN_REF.match(ref) else quote(ref)


def show_file(name: str) -> str:
    """A file name as it is, unless it holds a character that cannot be shown (then quoted)."""
    return name if name and name.isprintable() else quote(name)


def format_path(path: Path) -> str:
    """``("spec", "ports", 0, "port")`` -> ``spec.ports[0].port``, as the API server prints it;
    a map key is ``[key]``: ``metadata.labels[app]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, Key):
            text += f"[{plain(part)}]"
        else:
            text += f".{plain(part)}" if text else plain(part)
    return text


def show_value(value: Any) -> str:
    """A value as the API server shows it in a message: strings quoted (Go's %q), JSON's
    true/false/null, numbers as Go prints them, and the kind of a list or an object."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, int):
        return str(value)
    return "object" if isinstance(value, dict) else "list"


def one_line(text: str) -> str:
    """``text`` with every character that cannot be shown escaped: the last guard that keeps one
    problem on one line, whatever a message was made of."""
    return text if text.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    ``origin`` locates the object (and through ``path`` the field) in its file; objects that are
    not known (a file that does not parse) give ``file``, ``line`` and, where the parser knows
    it, ``column`` directly.
    """

    message: str
    path: Path = ()
    origin: "Origin | None" = None
    kind: str = ""
    ref: str = ""  # namespace/name, or name for cluster-scoped kinds
    file: str = ""
    line: int | None = None
    column: int | None = None

    def location(self) -> tuple[str, int]:
        """File name and line (0 when unknown)."""
        if self.origin is not None:
            return self.origin.source.name, self.origin.line_of(self.path)
        return self.file, self.line or 0

    def render(self) -> str:
        file, line = self.location()
        where = f"{file}:{line}" if line else file
        if line and self.column:
            where += f":{self.column}"
        parts = [where]
        if self.kind:
            parts.append(f"{self.kind} {show_ref(self.ref)}")
        if self.path:
            parts.append(format_path(self.path))
        parts.append(self.message)
        return one_line(": ".join(parts))


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
