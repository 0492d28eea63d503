"""Keeping svcctl's iptables chains in step with a plan that changes a few Services at a time
(``svcctl run``).

The syncer holds every Service's plan. A commit lays the whole ruleset out and renders it, then
compares it table by table (svcctl.iptables.decide) with what it last committed, which it keeps:
an update reads nothing from the kernel and sends only the chains that changed. The first
commit, a verify (the periodic resync: repairs what was changed by hand) and a commit after a
failed one compare with the kernel's iptables-save instead; ``reload`` rewrites every chain.
Laying out the whole ruleset costs about 1 s at 10,000 Services; the nftables syncer lays out
only the Services that changed (svcctl.nftables.syncer), here the chains are the unit that
changes and the comparison finds them.
"""

from __future__ import annotations

from ..backends import ApplyResult
from ..kernel import KernelError, locked
from ..options import Options
from ..plan import FamilyPlan, Plan, ServicePlan, family_settings
from ..formats import packed_ip
from . import transport
from .frame import TableName
from .layout import layout
from .objects import Family
from .render import Planned, planned
from .state import TableState
from .xtables import Xtables

VERSIONS = (4, 6)
Name = tuple[str, str]


class Syncer:
    """The iptables back end's syncer (svcctl.backends.Syncer)."""

    def __init__(self, options: Options):
        self.mode = options.iptables_mode
        self._settings = {v: family_settings(v, options) for v in VERSIONS}
        self._services: dict[int, dict[Name, ServicePlan]] = {v: {} for v in VERSIONS}
        self._changed = False
        self._xt: Xtables | None = None
        self._committed: dict[tuple[Family, TableName], TableState] | None = None  # None: unknown, read the kernel
        self._counts = {"chains": 0, "rules": 0}

    def reconfigure(self, options: Options) -> None:
        """New node settings (cluster objects changed them): the frame's chains change with
        them; the next commit compares with the kernel."""
        self._settings = {v: family_settings(v, options) for v in VERSIONS}
        self._committed = None

    def update(self, version: int, service: Name, plan: ServicePlan | None) -> None:
        if plan is None:
            self._services[version].pop(service, None)
        else:
            self._services[version][service] = plan
        self._changed = True

    def ruleset(self) -> Planned:
        """Everything, as a full compile would lay it out (Services in namespace/name order)."""
        families = []
        for v in VERSIONS:
            services = [self._services[v][name] for name in sorted(self._services[v])]
            s = self._settings[v]
            families.append(FamilyPlan(
                version=v,
                masquerade=s.masquerade,
                cluster_cidrs=s.cluster_cidrs,
                nodeport_cidrs=s.nodeport_cidrs,
                cluster_ips=tuple(sorted({sp.cluster_ip for sp in services}, key=lambda ip: packed_ip(ip) or b"")),
                service_cidrs=s.service_cidrs,
                ports=tuple(p for sp in services for p in sp.ports),
            ))
        return planned(layout(Plan(tuple(families))), self.mode)

    def counts(self) -> dict[str, int]:
        """How much is in the tables, as last committed: svcctl's chains and their rules."""
        return dict(self._counts)

    def commit(self, verify: bool = False, reload: bool = False) -> ApplyResult:
        """Send what changed since the last commit. ``verify``: compare with the kernel and
        repair what differs; ``reload``: rewrite every chain. Raises Refused (nothing changed;
        the next commit reads the kernel) or KernelError."""
        if not (self._changed or verify or reload) and self._committed is not None:
            return ApplyResult(False, "no changes", "", (), ())
        plan = self.ruleset()
        committed, self._committed = self._committed, None  # until the kernel took it
        with locked(transport.LOCK):
            try:
                if self._xt is None or committed is None or verify or reload:
                    self._xt, live = transport.read(self.mode)
                else:
                    live = committed
                result = transport.send(self._xt, plan, live, whole=reload)
            except KernelError:
                self._xt = None
                raise
        self._committed = dict(plan.tables)
        self._changed = False
        self._counts = {
            "chains": sum(len(s.chains) for s in plan.tables.values()),
            "rules": sum(len(lines) for s in plan.tables.values() for lines in s.chains.values()),
        }
        return result
