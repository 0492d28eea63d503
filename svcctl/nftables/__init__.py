"""The nftables back end: the plan as nftables tables (layout), their text (render, through
templates/nftables), and the kernel side (transport: apply, dry-run, diff, delete)."""

from __future__ import annotations

from ..backends import ApplyResult, Compiled, Syncer
from ..options import Options
from ..plan import Plan
from . import transport
from .layout import layout
from .nft import Listing
from .render import render_ruleset


class Nftables:
    name = "nftables"

    def compile(self, plan: Plan, options: Options) -> Compiled:
        ruleset = layout(plan, options.table)
        return Compiled(self.name, ruleset, render_ruleset(ruleset))

    def apply(self, compiled: Compiled, dry_run: bool = False) -> ApplyResult:
        return transport.apply(compiled.rules, dry_run)

    def snapshot(self, options: Options) -> Listing:
        return Listing(transport.scopes(options.table))

    def diff(self, compiled: Compiled, live: Listing, raw: bool = False) -> str:
        return transport.diff(compiled.rules, live, raw)

    def delete(self, options: Options) -> tuple[list[str], list[str]]:
        return transport.delete(options.table)

    def syncer(self, options: Options) -> Syncer:
        from .syncer import Syncer

        return Syncer(options, transport.privileged())


BACKEND = Nftables()
