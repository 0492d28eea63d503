"""What every rule reports through: the object under validation and its problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar

from ..load import Origin
from ..problems import Path, Problem, show_value

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A validated object and where it came from."""

    obj: T
    origin: Origin


class Reporter:
    """Collects the problems of one object."""

    def __init__(self, entry: Entry[Any], problems: list[Problem]):
        self.entry = entry
        self.problems = problems
        self.clean = True

    def __call__(self, path: Path, messages: str | Sequence[str]) -> None:
        for message in [messages] if isinstance(messages, str) else messages:
            self.clean = False
            obj = self.entry.obj
            self.problems.append(Problem(message, path, self.entry.origin, obj.kind, obj.ref))

    def invalid(self, path: Path, value: Any, messages: str | Sequence[str]) -> None:
        shown = show_value(value)
        self(path, [f"Invalid value: {shown}: {m}" for m in ([messages] if isinstance(messages, str) else messages)])
