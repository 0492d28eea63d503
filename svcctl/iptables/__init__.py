"""The iptables back end: the plan as iptables chains and rules (layout), their text (render,
through templates/iptables), and the kernel side (transport: apply, dry-run, diff, delete) for
iptables-nft and iptables-legacy alike (xtables)."""

from __future__ import annotations

from ..backends import ApplyResult, Compiled, Syncer
from ..options import Options
from ..plan import Plan
from .layout import layout
from .render import planned, render_ruleset
from .xtables import Saves

__all__ = ["BACKEND"]


class Iptables:
    """The kernel side (transport, and with it changes, refusal, conntrack: ~2 ms of imports)
    is imported by the methods that talk to the kernel: ``compile`` never needs it."""

    name = "iptables"

    def compile(self, plan: Plan, options: Options) -> Compiled:
        rules = planned(layout(plan), options.iptables_mode)
        return Compiled(self.name, rules, render_ruleset(rules))

    def apply(self, compiled: Compiled, dry_run: bool = False, reload: bool = False) -> ApplyResult:
        from . import transport

        return transport.apply(compiled.rules, dry_run, reload)

    def snapshot(self, options: Options) -> Saves:
        return Saves(options.iptables_mode)

    def diff(self, compiled: Compiled, live: Saves, raw: bool = False) -> str:
        from . import transport

        return transport.diff(compiled.rules, live, raw)

    def delete(self, options: Options) -> tuple[str, tuple[str, ...]]:
        from . import transport

        return transport.delete(options.iptables_mode)

    def syncer(self, options: Options) -> Syncer:
        from . import transport
        from .syncer import Syncer

        transport.privileged()
        return Syncer(options)


BACKEND = Iptables()
