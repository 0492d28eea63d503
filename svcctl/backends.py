"""Back ends: the kernel interfaces svcctl writes rules for. Each turns the same plan
(svcctl.plan) into its own rules and text, and applies, diffs and deletes them; nothing before
the plan knows which one is in use. Looked up by name, imported only when used."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .options import Options
from .plan import Plan, ServicePlan
from .problems import InvalidInput, Problem

if TYPE_CHECKING:
    from .conntrack import UdpFrontend

DEFAULT = "nftables"
# name -> module that defines BACKEND
_MODULES = {"nftables": "svcctl.nftables", "iptables": "svcctl.iptables"}


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
    conntrack_deleted: tuple[tuple[str, int], ...]  # removed UDP endpoints whose flows were deleted
    warnings: tuple[str, ...]
    conntrack_bypassing: tuple[UdpFrontend, ...] = ()  # new UDP frontends whose un-DNATed flows were deleted


class Syncer(Protocol):
    """A back end's side of ``svcctl run``: keeps the kernel in step with a plan that changes a
    few Services at a time, sending only what they changed. Made by ``Backend.syncer``, which
    raises KernelError when the kernel is out of reach (no privileges: exit 3)."""

    def update(self, version: int, service: tuple[str, str], plan: ServicePlan | None) -> None:
        """A Service's part of one IP family's plan (svcctl.plan.service_plan); None when it has
        none there any more. Nothing is sent before ``commit``."""

    def commit(self, verify: bool = False, reload: bool = False) -> ApplyResult:
        """One atomic transaction with what changed since the last commit (nothing when nothing
        did). ``verify``: read the kernel and repair what differs from the plan; ``reload``:
        rewrite the rules whole. Raises svcctl.kernel.Refused (nothing changed) or KernelError."""

    def reconfigure(self, options: Options) -> None:
        """New node settings (cluster objects changed them: svcctl.cluster): the next commit
        decides from what the kernel holds."""

    def ruleset(self) -> Any:
        """The back end's rules for everything updated so far, as ``compile`` would make them."""

    def counts(self) -> dict[str, int]:
        """How many objects the rules hold, by the back end's own names for them."""


class Backend(Protocol):
    name: str

    def syncer(self, options: Options) -> Syncer:
        """A syncer for ``svcctl run`` (see Syncer)."""

    def compile(self, plan: Plan, options: Options) -> Compiled:
        """Pure: the same plan and options give the same bytes."""

    def apply(self, compiled: Compiled, dry_run: bool = False, reload: bool = False) -> ApplyResult:
        """One atomic transaction, only what changed (``reload``: svcctl's rules rewritten whole,
        which also repairs rules edited by hand that the back end's change detection does not
        read). Raises svcctl.kernel.Refused (nothing changed) or KernelError (the kernel is out
        of reach)."""

    def snapshot(self, options: Options) -> Any:
        """Start reading what is live (svcctl's rules of these options), to be handed to ``diff``:
        the read may run while the plan is compiled. Raises KernelError."""

    def diff(self, compiled: Compiled, live: Any, raw: bool = False) -> str:
        """What apply would change, "" when the kernel holds the plan: per Service port, then the
        rules without the names' hashes; with ``raw`` the unified diff of the back end's listings.
        Raises KernelError."""

    def delete(self, options: Options) -> tuple[str, tuple[str, ...]]:
        """Remove svcctl's rules and nothing else: (what was deleted, or that nothing was, in one
        line; notes on what of svcctl's names was left alone because svcctl did not make it)."""


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
