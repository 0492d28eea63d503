"""``svcctl run``: the node agent (svcctl.agent). Exit 0 on SIGTERM/SIGINT (the rules stay), 2 for
invalid options, 3 without the privileges to change the rules."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..backends import backend
from ..options import Options
from ..problems import InvalidInput, Problem
from .app import app
from .settings import NODE_SETTINGS, with_options

if TYPE_CHECKING:
    from ..agent.loop import Agent

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# ASCII digits only: \d and float() also take other scripts' digits ("１s"), and float() "nan",
# "inf" and "1e400", which Go's time.ParseDuration refuses.
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_DURATION = re.compile(rf"({_NUMBER})(ns|us|µs|ms|s|m|h)")
_SECONDS = re.compile(_NUMBER)
_LONGEST = (2**63 - 1) / 1e9  # Go's time.Duration: int64 nanoseconds, about 292 years


def parse_duration(text: str) -> float:
    """A duration as Go (and kube-proxy's flags) write it: ``100ms``, ``1s``, ``1m30s``; a bare
    number is seconds. Raises ValueError."""
    text = text.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f'"{text}" is not a duration like 100ms, 1s, 30s or 1m')
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds > _LONGEST:
        raise ValueError(f'"{text}" is longer than a duration can be (about 292 years)')
    return seconds


def _invalid(message: str) -> InvalidInput:
    return InvalidInput([Problem(message, file="command line")])


@app.command()
@with_options(*NODE_SETTINGS)
def run(
    options: Options,
    source: Annotated[Optional[str], typer.Argument(metavar="[DIRECTORY]", help="A manifest directory: its *.yaml, *.yml and *.json files, watched.", show_default=False)] = None,
    kubeconfig: Annotated[Optional[str], typer.Option("--kubeconfig", metavar="FILE", help="Watch the Kubernetes API of this kubeconfig file (its current context) instead of a directory.")] = None,
    in_cluster: Annotated[bool, typer.Option("--in-cluster", help="Watch the Kubernetes API with the pod's service account (KUBERNETES_SERVICE_HOST and _PORT, its token and CA).")] = False,
    health_addr: Annotated[str, typer.Option("--health-addr", metavar="HOST:PORT", help="Where /healthz and /livez answer (empty: nowhere).")] = "127.0.0.1:10256",
    metrics_addr: Annotated[str, typer.Option("--metrics-addr", metavar="HOST:PORT", help="Where /metrics answers (empty: nowhere).")] = "127.0.0.1:10249",
    min_sync_period: Annotated[str, typer.Option("--min-sync-period", metavar="DURATION", help="Syncs for changes start at most this often (0: at once).")] = "1s",
    sync_period: Annotated[str, typer.Option("--sync-period", metavar="DURATION", help="How often the kernel is read and repaired.")] = "30s",
    log_format: Annotated[str, typer.Option("--log-format", metavar="text|json", help="key=value pairs, or one JSON object per line.")] = "text",
) -> None:
    """Node agent: keep the rules in step with a manifest directory, or with the Kubernetes API
    (--kubeconfig FILE, --in-cluster), until SIGTERM or SIGINT.

    From the API it watches what kube-proxy watches: Services, EndpointSlices, ServiceCIDRs and
    this node's Node (--node-name). Each change reaches the kernel as a transaction with only what it changed;
    every --sync-period the kernel is read and repaired. Serves /healthz, /metrics and the
    healthCheckNodePorts of LoadBalancer Services. On SIGTERM or SIGINT it exits and leaves the
    rules in place; SIGHUP rewrites the rules whole at once. Needs root (CAP_NET_ADMIN).

    \b
    Examples:
      svcctl run /etc/svcctl/manifests --config /etc/svcctl/config.yaml
      svcctl run manifests/ --node-name node-1 --min-sync-period 0 --log-format json
      svcctl run --kubeconfig /etc/svcctl/kubeconfig --config /etc/svcctl/config.yaml
    Exit status: 0 after SIGTERM or SIGINT, 2 invalid options, 3 the kernel is out of reach (no
    privileges).
    """
    # The agent (asyncio, prometheus_client, watchfiles, the Kubernetes client) is imported by the
    # one command that runs it.
    import asyncio

    from ..agent import logs
    from ..agent.health import HealthCheckServers, ProxyHealth, split_address
    from ..agent.kube import ConfigError, KubeSource, connect
    from ..agent.loop import Agent
    from ..agent.metrics import Metrics
    from ..agent.reconcile import Schedule, Syncing
    from ..agent.source import DirectorySource, Source

    try:
        min_period, period = parse_duration(min_sync_period), parse_duration(sync_period)
        addresses = [split_address(a) if a else None for a in (health_addr, metrics_addr)]
    except ValueError as err:
        raise _invalid(str(err)) from None
    if period <= 0:
        raise _invalid("--sync-period must be more than 0")
    if log_format not in logs.FORMATS:
        raise _invalid(f'--log-format: "{log_format}" is not one of {", ".join(logs.FORMATS)}')
    given = [name for name, value in (("DIRECTORY", source), ("--kubeconfig", kubeconfig), ("--in-cluster", in_cluster)) if value]
    if len(given) != 1:
        raise _invalid(f"give one source: a DIRECTORY, --kubeconfig FILE or --in-cluster (not {' and '.join(given)})" if given else
                       "give a source: a DIRECTORY, --kubeconfig FILE or --in-cluster")
    metrics = Metrics()
    watched: Source
    if source is not None:
        directory = Path(source)
        if not directory.is_dir():
            raise _invalid(f"{source}: not a directory (svcctl run watches a manifest directory)")
        watched, shown = DirectorySource(directory, rescan=period), str(directory)
    else:
        try:
            client = connect(kubeconfig, in_cluster)
        except ConfigError as err:
            raise _invalid(f"{given[0]}: {err}") from None
        watched, shown = KubeSource(client, options.node_name, metrics), f"Kubernetes API {client.base_url}"
    syncer = backend(options.backend).syncer(options)  # KernelError without privileges: exit 3
    log = logs.setup(log_format)
    health = ProxyHealth(2 * period, time.time)
    agent = Agent(watched, Syncing(options, syncer), Schedule(min_period, period), metrics, health, HealthCheckServers(health))
    log.info("starting", extra={"fields": {"source": shown, "backend": options.backend, "node": options.node_name, "min_sync_period_s": min_period, "sync_period_s": period}})
    try:
        asyncio.run(_main(agent, addresses[0], addresses[1]))
    except OSError as err:
        raise _invalid(f"cannot listen: {err.strerror or err}") from None
    log.info("stopped: the rules stay in place")
    if agent.abandoned:  # a sync thread is still running: leave without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


async def _main(agent: Agent, health_at: tuple[str, int] | None, metrics_at: tuple[str, int] | None) -> None:
    import asyncio
    import signal

    from ..agent.health import Response, serve
    from ..agent.metrics import CONTENT_TYPE

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, agent.reload)  # as daemons take it: reload, not end

    def health(method: str, path: str) -> Response:
        if path not in ("/healthz", "/livez"):
            return Response(404, b"404 page not found\n", "text/plain")
        answer = agent.health.answer(node=path == "/healthz")
        if path == "/healthz":
            agent.metrics.healthz.labels(str(answer.status)).inc()
        return answer

    def metrics(method: str, path: str) -> Response:
        if path != "/metrics":
            return Response(404, b"404 page not found\n", "text/plain")
        return Response(200, agent.metrics.render(), CONTENT_TYPE)

    def both(method: str, path: str) -> Response:
        return metrics(method, path) if path == "/metrics" else health(method, path)

    servers = []
    if health_at is not None and health_at == metrics_at:
        servers.append(await serve(*health_at, both))
    else:
        for at, handler in ((health_at, health), (metrics_at, metrics)):
            if at is not None:
                servers.append(await serve(*at, handler))
    try:
        await agent.run(stop)
    finally:
        for server in servers:
            server.close()
