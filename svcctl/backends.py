"""Back ends: the kernel interfaces svcctl writes rules for. Each turns the same plan
(svcctl.plan) into its own rules and text, and applies, diffs and deletes them; nothing before
the plan knows which one is in use. Looked up by name, imported only when used."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from .options import Options
from .plan import Plan
from .problems import InvalidInput, Problem

DEFAULT = "nftables"
# name -> module that defines BACKEND
_MODULES = {"nftables": "svcctl.nftables"}


@dataclass(frozen=True)
class Compiled:
    """A plan compiled for one back end: its own objects (``rules``) and their text."""

    backend: str
    rules: Any
    text: str


@dataclass(frozen=True)
class ApplyResult:
    changed: bool  # something was (with a dry run: would be) sent to the kernel
    summary: str  # what was sent, in a few words
    diff: str  # with a dry run: live -> planned
    conntrack_deleted: tuple[tuple[str, int], ...]
    warnings: tuple[str, ...]


class Backend(Protocol):
    name: str

    def compile(self, plan: Plan, options: Options) -> Compiled:
        """Pure: the same plan and options give the same bytes."""

    def apply(self, compiled: Compiled, dry_run: bool = False) -> ApplyResult:
        """One atomic transaction, only what changed. Raises svcctl.kernel.Refused (nothing
        changed) or KernelError (the kernel is out of reach)."""

    def snapshot(self, options: Options) -> Any:
        """Start reading what is live (svcctl's rules of these options), to be handed to ``diff``:
        the read may run while the plan is compiled. Raises KernelError."""

    def diff(self, compiled: Compiled, live: Any, raw: bool = False) -> str:
        """What apply would change, "" when the kernel holds the plan: per Service port, then the
        rules without the names' hashes; with ``raw`` the unified diff of the back end's listings.
        Raises KernelError."""

    def delete(self, options: Options) -> tuple[list[str], list[str]]:
        """Remove svcctl's rules: (what was deleted, what of svcctl's names was left alone because
        svcctl did not make it)."""


def names() -> tuple[str, ...]:
    return tuple(_MODULES)


def backend(name: str) -> Backend:
    """The back end called ``name``. Raises InvalidInput for an unknown one."""
    module = _MODULES.get(name)
    if module is None:
        close = difflib.get_close_matches(name, _MODULES, n=1)
        hint = f' Did you mean "{close[0]}"?' if close else f" Known: {', '.join(_MODULES)}."
        raise InvalidInput([Problem(f'unknown back end "{name}".{hint}', file="command line")])
    return importlib.import_module(module).BACKEND  # type: ignore[no-any-return]
