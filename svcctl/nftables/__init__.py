"""The nftables back end: the plan as nftables tables (layout), their text (render, through
templates/nftables), and the kernel side (transport: apply, dry-run, diff, delete)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backends import ApplyResult, Compiled, Syncer
from ..options import Options
from ..plan import Plan
from .layout import layout
from .render import render_ruleset

if TYPE_CHECKING:
    from .nft import Listing


class Nftables:
    """The kernel side (transport, and with it decide, live, changes: ~4 ms of imports) is
    imported by the methods that talk to the kernel: ``compile`` never needs it."""

    name = "nftables"

    def compile(self, plan: Plan, options: Options) -> Compiled:
        ruleset = layout(plan, options.table)
        return Compiled(self.name, ruleset, render_ruleset(ruleset))

    def apply(self, compiled: Compiled, dry_run: bool = False, reload: bool = False) -> ApplyResult:
        from . import transport

        return transport.apply(compiled.rules, dry_run, reload)

    def snapshot(self, options: Options) -> Listing:
        from . import transport
        from .nft import Listing

        return Listing(transport.scopes(options.table))

    def diff(self, compiled: Compiled, live: Listing, raw: bool = False) -> str:
        from . import transport

        return transport.diff(compiled.rules, live, raw)

    def delete(self, options: Options) -> tuple[str, tuple[str, ...]]:
        from . import transport

        gone, foreign = transport.delete(options.table)
        said = f"deleted: table {' and table '.join(gone)}" if gone else f"nothing to delete: no table named {options.table} made by svcctl"
        return said, tuple(f"left table {name} alone: svcctl did not make it" for name in foreign)

    def syncer(self, options: Options) -> Syncer:
        from . import transport
        from .syncer import Syncer

        return Syncer(options, transport.privileged())


BACKEND = Nftables()
