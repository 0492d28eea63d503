"""When ``svcctl run`` syncs, and what a sync does.

``Schedule`` is the timing alone, pure (a clock is passed in; tests/test_agent_schedule.py
drives it with a fake one), after kube-proxy's BoundedFrequencyRunner:

- a change asks for an update sync; updates start at most once per ``min_period`` (kube-proxy's
  --min-sync-period, default 1 s): changes that come meanwhile are taken by the next one;
- every ``sync_period`` (--sync-period, default 30 s) a verify sync reads the kernel and repairs
  what differs (tables, chains, sets or elements deleted or changed by hand);
- every ``reload_period`` (1 hour, kube-proxy nftables' full sync period) a reload rewrites the
  rules whole, which also repairs rules edited by hand inside chains;
- a failed sync (the kernel refused, or is out of reach) is retried as a verify sync after a
  backoff that doubles from 1 s up to ``sync_period``; changes meanwhile wait for it.

``Syncing`` is what one sync does: take the source's events into the inventory, work out the
Services they reach, send what changed to the kernel (svcctl.agent.planner, the back end's
Syncer). It runs in a worker thread; it is not used concurrently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from ..backends import ApplyResult, Syncer
from ..cluster import options_for
from ..kernel import KernelError, Refused
from ..options import Options
from ..plan import ServicePlan
from .planner import Name, Planner
from .source import Event
from .state import Key, State

RELOAD_PERIOD = 3600.0
BACKOFF_FIRST = 1.0


class Kind(IntEnum):
    """What a sync does, weakest first: a stronger one does what a weaker one would too."""

    UPDATE = 0  # send what changed, decided from memory
    VERIFY = 1  # read the kernel, repair what differs
    RELOAD = 2  # rewrite the rules whole

    @property
    def label(self) -> str:
        return ("partial", "full", "reload")[self]


@dataclass
class Schedule:
    min_period: float
    sync_period: float
    reload_period: float = RELOAD_PERIOD
    changed: bool = False  # changes are waiting for a sync
    started: float | None = None  # when the last sync started
    verified: float = 0.0  # when the last verify (or reload) sync ended well
    reloaded: float = 0.0
    failures: int = 0  # syncs failed in a row
    retry_at: float = 0.0

    def start(self, now: float) -> None:
        """The first sync is due at once, a verify: it adopts what the kernel holds (a reload,
        if one was asked for before it)."""
        self.verified = now - self.sync_period
        if self.reloaded != float("-inf"):  # not asked for already (SIGHUP)
            self.reloaded = now

    def change(self) -> None:
        self.changed = True

    def reload_now(self) -> None:
        """A reload is due at once (SIGHUP); while a failed sync waits for its retry, after the
        retry (a verify) went well."""
        self.reloaded = float("-inf")

    def due(self, now: float) -> tuple[float, Kind]:
        """When the next sync starts (possibly in the past: now), and its kind."""
        if self.failures:
            return self.retry_at, Kind.VERIFY
        candidates = [(self.verified + self.sync_period, Kind.VERIFY), (self.reloaded + self.reload_period, Kind.RELOAD)]
        if self.changed:
            earliest = self.started + self.min_period if self.started is not None else now
            candidates.append((earliest, Kind.UPDATE))
        when = min(w for w, _ in candidates)
        # A sync also does what a stronger one due by then would.
        return when, max(k for w, k in candidates if w <= max(when, now))

    def begin(self, now: float) -> None:
        self.started = now
        self.changed = False  # what changed so far is taken by this sync

    def end(self, now: float, kind: Kind, ok: bool) -> float | None:
        """Record how a sync went; on failure, returns the backoff before the retry."""
        if ok:
            self.failures = 0
            if kind >= Kind.VERIFY:
                self.verified = now
            if kind is Kind.RELOAD:
                self.reloaded = now
            return None
        self.failures += 1
        backoff = min(BACKOFF_FIRST * 2 ** (self.failures - 1), max(self.sync_period, BACKOFF_FIRST))
        self.retry_at = now + backoff
        return backoff


CLUSTER_KINDS = ("ServiceCIDR", "Node")  # objects that change the node settings (svcctl.cluster)


@dataclass(frozen=True)
class SyncReport:
    """What one sync did, for the log, the metrics and the health checks."""

    kind: Kind
    seconds: float
    commit_seconds: float  # of which the kernel (reading it, for a verify; the transaction)
    events: int  # source events taken
    services: int  # plans of this many Services changed (per family)
    result: ApplyResult | None  # None: it failed
    error: str = ""
    new_problems: tuple[str, ...] = ()  # input problems that were not there before
    problems: int = 0  # input problems now
    warnings: tuple[str, ...] = ()  # new warnings of the plan (addresses two Services ask for)
    totals: dict[str, int] = field(default_factory=dict)
    health_checks: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # Service -> (port, local endpoints)
    node_eligible: bool = True  # this node's Node (if known) is not going away
    triggered: tuple[float, ...] = ()  # when the EndpointSlice changes this sync took were made (Unix time)


class Syncing:
    """The agent's state and what a sync does with it."""

    def __init__(self, options: Options, syncer: Syncer, clock: Any = time.monotonic, wall_clock: Any = time.time):
        self.options = options  # as given; cluster objects in the input add to them (svcctl.cluster)
        self.started = wall_clock()
        self.state = State(options.node_port_range)
        self.planner = Planner(options)
        self.syncer = syncer
        self._clock = clock
        self._problems: set[str] = set()
        self._warnings: set[str] = set()

    def _settings(self) -> Options:
        """The node settings with what the cluster objects now add (svcctl.cluster)."""
        objects = self.state.objects
        return options_for(
            self.options,
            (e.obj for k, e in objects.items() if k.kind == "ServiceCIDR"),
            (e.obj for k, e in objects.items() if k.kind == "Node"),
        )

    def _reconfigure(self, options: Options | None = None) -> dict[tuple[int, Name], ServicePlan | None]:
        """Cluster objects (ServiceCIDRs, this node's Node) changed the node settings (to
        ``options``, else as they say now): plan every Service again with them (rare: a full
        plan, as at start)."""
        options = options or self._settings()
        objects = self.state.objects
        before = self.planner
        self.planner = Planner(options)
        plans = self.planner.update(self.state, {k: (None, e) for k, e in objects.items()})
        for version, names in before.plans.items():
            for name in names:
                plans.setdefault((version, name), None)
        self.syncer.reconfigure(options)
        return plans

    def sync(self, events: list[Event], kind: Kind) -> SyncReport:
        start = self._clock()
        changes = self.state.apply(events)
        triggered = tuple(t for key, (_, after) in changes.items() if key.kind == "EndpointSlice" and (t := _triggered(after)) >= self.started)
        options = self._settings() if any(key.kind in CLUSTER_KINDS for key in changes) else self.planner.options
        if options != self.planner.options:
            plans = self._reconfigure(options)
        else:
            # Other changes of Nodes (a zone: svcctl.topology) reach only the Services they concern.
            plans = self.planner.update(self.state, changes)
        for (version, name), ports in plans.items():
            self.syncer.update(version, name, ports)
        problems = {p.render() for p in [*self.state.problems(), *self.planner.problems()]}
        new_problems = tuple(sorted(problems - self._problems))
        self._problems = problems
        warnings = set(self.planner.warnings())
        new_warnings = tuple(sorted(warnings - self._warnings))
        self._warnings = warnings
        result, error = None, ""
        committing = self._clock()
        try:
            result = self.syncer.commit(verify=kind >= Kind.VERIFY, reload=kind is Kind.RELOAD)
        except Refused as err:
            error = err.describe()
        except KernelError as err:
            error = str(err)
        return SyncReport(
            kind=kind,
            seconds=self._clock() - start,
            commit_seconds=self._clock() - committing,
            events=len(events),
            services=len({name for _, name in plans}),
            result=result,
            error=error,
            new_problems=new_problems,
            problems=len(problems),
            warnings=new_warnings,
            totals={**self.planner.totals(), **self.syncer.counts()},
            health_checks=self.planner.health_checks(),
            node_eligible=self.node_eligible(),
            triggered=triggered,
        )

    def node_eligible(self) -> bool:
        """Whether load balancers may send this node new connections: not while its Node object
        says it is going away. A node without a Node object in the input is eligible."""
        entry = self.state.objects.get(Key("Node", "", self.options.node_name))
        return entry is None or not entry.obj.going


TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


def _triggered(entry: Any) -> float:
    """When the change an EndpointSlice holds was made: its ``last-change-trigger-time``
    annotation (the EndpointSlice controller's, RFC 3339 with up to nanoseconds), as Unix time;
    0 without one (or a gone slice). kube-proxy's network programming latency counts from it."""
    text = entry.obj.metadata.annotations.get(TRIGGER_TIME, "") if entry is not None else ""
    seconds, dot, rest = text.rstrip("Z").partition(".")
    try:
        when = datetime.fromisoformat(seconds + "+00:00").timestamp()
        return when + (float(f"0.{rest}") if dot and rest.isdigit() else 0.0)
    except ValueError:
        return 0.0
