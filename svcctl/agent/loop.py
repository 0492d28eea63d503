"""The agent: one asyncio loop that reads the source, starts syncs when the schedule says
(svcctl.agent.reconcile), runs each in a worker thread (the loop keeps answering /healthz and
the health-check node ports meanwhile), and reports how each went: a log line, the metrics, the
health state, the healthCheckNodePort servers. It stops when ``stop`` is set, within a second
even during a long sync: the rules stay as the last commit left them (an nftables transaction is
whole or nothing, so a commit cut short by the exit changes nothing)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, TypeVar

from .health import HealthCheckServers, ProxyHealth
from .metrics import Metrics
from .reconcile import Kind, Schedule, SyncReport, Syncing
from .source import Event, Source, Synced

T = TypeVar("T")
STOP_GRACE = 0.5  # how long a running sync may still take once stop is set
RESTART_SOURCE = 1.0

log = logging.getLogger("svcctl.agent")


class Agent:
    def __init__(self, source: Source, syncing: Syncing, schedule: Schedule, metrics: Metrics, health: ProxyHealth, health_checks: HealthCheckServers):
        self.source = source
        self.syncing = syncing
        self.schedule = schedule
        self.metrics = metrics
        self.health = health
        self.health_checks = health_checks
        self.abandoned = False  # stopped while a sync was still running in its thread
        self._pending: list[Event] = []
        self._synced = asyncio.Event()
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        reader = asyncio.create_task(self._read())
        stopping = asyncio.create_task(stop.wait())
        synced = asyncio.create_task(self._synced.wait())
        try:
            await asyncio.wait({stopping, synced}, return_when=asyncio.FIRST_COMPLETED)
            self.schedule.start(time.monotonic())
            while not stop.is_set():
                now = time.monotonic()
                when, kind = self.schedule.due(now)
                if when > now:
                    self._wake.clear()
                    waker = asyncio.create_task(self._wake.wait())
                    await asyncio.wait({waker, stopping}, timeout=when - now, return_when=asyncio.FIRST_COMPLETED)
                    waker.cancel()
                    continue
                events, self._pending = self._pending, []
                self.schedule.begin(now)
                sync = asyncio.ensure_future(_in_thread(self.syncing.sync, events, kind))
                await asyncio.wait({sync, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not sync.done():
                    await asyncio.wait({sync}, timeout=STOP_GRACE)
                    if not sync.done():
                        self.abandoned = True
                        break
                await self._report(sync, kind)
        finally:
            self.source.stop()
            for task in (reader, stopping, synced):
                task.cancel()
            await self.health_checks.close()

    def reload(self) -> None:
        """Rewrite the rules whole at the next chance (SIGHUP), as the hourly reload does."""
        log.info("SIGHUP: reloading the rules whole")
        self.schedule.reload_now()
        self._wake.set()

    async def _read(self) -> None:
        """The source's events, for ever: a source that fails (the watcher could not be set up:
        the directory is missing) is logged and started again a second later; the rules stay."""
        while True:
            try:
                async for event in self.source.events():
                    if isinstance(event, Synced):
                        self._synced.set()
                        continue
                    self._pending.append(event)
                    self.schedule.change()
                    self.metrics.changes.inc()
                    self.metrics.last_queued.set(time.time())
                    self._wake.set()
                return  # stopped
            except OSError as err:
                log.error("source failed, retrying in 1 s", extra={"fields": {"error": str(err)}})
                await asyncio.sleep(RESTART_SOURCE)

    async def _report(self, sync: asyncio.Future[SyncReport], kind: Kind) -> None:
        try:
            report = sync.result()
        except Exception as err:  # noqa: BLE001 - a bug in svcctl: logged, retried, never fatal
            log.error("internal error (a bug in svcctl)", extra={"fields": {"error": f"{type(err).__name__}: {err}"}})
            report = SyncReport(kind, 0.0, 0.0, 0, 0, None, error=str(err))
        else:
            if self.health.node_eligible != report.node_eligible:
                log.warning("this node's Node is going away: /healthz says 503" if not report.node_eligible else "this node's Node is back: /healthz follows the syncs again")
            self.health.node_eligible = report.node_eligible
        ok = report.result is not None
        backoff = self.schedule.end(time.monotonic(), kind, ok)
        if ok:
            self.health.updated()
        self.metrics.synced(report, time.time())
        for line in report.new_problems:
            log.warning("invalid input", extra={"fields": {"problem": line}})
        for line in report.warnings:
            log.warning("conflict", extra={"fields": {"warning": line}})
        fields: dict[str, Any] = {
            "kind": kind.label,
            "events": report.events,
            "changed_services": report.services,
            **report.totals,
            "problems": report.problems,
            "duration_ms": round(report.seconds * 1000, 1),
            "kernel_ms": round(report.commit_seconds * 1000, 1),
        }
        if ok:
            assert report.result is not None
            log.info("sync", extra={"fields": {**fields, "sent": report.result.summary}})
            cleared = {"removed_endpoints": len(report.result.conntrack_deleted), "new_ports": len(report.result.conntrack_bypassing)}
            if any(cleared.values()):
                log.info("conntrack", extra={"fields": cleared})
            for warning in report.result.warnings:
                log.warning("conntrack", extra={"fields": {"warning": warning}})
        else:
            log.error("sync failed", extra={"fields": {**fields, "error": report.error, "retry_in_s": backoff}})
        await self.health_checks.sync(report.health_checks)
        self.metrics.health_check_services.set(len(self.health_checks.ports))


async def _in_thread(work: Callable[..., T], *args: Any) -> T:
    """Run ``work`` in a daemon thread of its own: one that may be left behind at exit, unlike
    the executor's, which the interpreter waits for."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(set_: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            set_(value)

    def target() -> None:
        try:
            result = work(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the loop
            outcome: tuple[Callable[[Any], None], Any] = (future.set_exception, err)
        else:
            outcome = (future.set_result, result)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the loop is gone: the agent stopped

    threading.Thread(target=target, name="svcctl-sync", daemon=True).start()
    return await future
