"""What ``svcctl run`` tells its load balancer and its operators over HTTP, as kube-proxy does
(pkg/proxy/healthcheck):

- ``/healthz`` and ``/livez`` (--health-addr, default 127.0.0.1:10256): 200 while the last sync
  that succeeded is recent (within twice --sync-period, kube-proxy's healthTimeout; a verify
  sync succeeds every --sync-period when all is well, even when nothing changed), else 503. A
  JSON body: ``{"lastUpdated", "currentTime", "healthy"}`` (RFC 3339 times; on 200 lastUpdated
  is the current time, as kube-proxy writes it). ``/healthz`` also says 503 while this node's
  Node object (when the input has it) is being deleted or tainted
  ToBeDeletedByClusterAutoscaler, with ``"nodeEligible": false``.
- ``/metrics`` (--metrics-addr, default 127.0.0.1:10249): svcctl.agent.metrics.
- one server per LoadBalancer Service with externalTrafficPolicy Local and a
  healthCheckNodePort, on that port on every address: what a cloud load balancer probes to learn
  which nodes have endpoints of the Service. Any path: 200 with
  ``{"service": {"namespace", "name"}, "localEndpoints": N, "serviceProxyHealthy": true}`` and
  the header ``X-Load-Balancing-Endpoint-Weight: N`` when this node has N > 0 ready endpoints of
  it and is healthy, else 503 with the same body. Opened and closed as Services come and go.

The HTTP side is a minimal HTTP/1.1 responder on asyncio streams (one request per connection:
probes and scrapers need no more).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Callable, NamedTuple

log = logging.getLogger("svcctl.agent")

HEADER_LIMIT = 16 * 1024
READ_TIMEOUT = 5.0


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[str, str], Response]  # (method, path) -> response

_REASONS = {200: "OK", 404: "Not Found", 400: "Bad Request", 503: "Service Unavailable"}


async def serve(host: str | None, port: int, handler: Handler) -> asyncio.Server:
    """Listen on host:port (None: every address, IPv4 and IPv6). Raises OSError if it cannot."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            response = handler(method, path.split("?", 1)[0])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError, ConnectionError):
            response = Response(400, b"", "text/plain")
        try:
            headers = [
                f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
                f"Content-Type: {response.content_type}",
                f"Content-Length: {len(response.body)}",
                "X-Content-Type-Options: nosniff",
                "Connection: close",
                *(f"{k}: {v}" for k, v in response.headers),
            ]
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + response.body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port, limit=HEADER_LIMIT, reuse_address=True)


def split_address(text: str) -> tuple[str, int]:
    """``H:P`` or ``[H6]:P`` -> (host, port). Raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:  # isdigit alone: "²"
        raise ValueError(f'"{text}" is not an address like 127.0.0.1:10256 or [::1]:10256')
    return host.strip("[]") or "0.0.0.0", int(port)


def _time(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat().replace("+00:00", "Z")


class ProxyHealth:
    """Whether the agent keeps the rules in step (kube-proxy's ProxyHealthServer)."""

    def __init__(self, timeout: float, clock: Callable[[], float]):
        self.timeout = timeout
        self._clock = clock  # Unix time
        self.last_updated = clock()  # a starting agent counts as healthy, as kube-proxy's
        self.node_eligible = True  # False while this node's Node object says it is going away

    def updated(self) -> None:
        self.last_updated = self._clock()

    def healthy(self) -> bool:
        return self._clock() - self.last_updated < self.timeout

    def answer(self, node: bool = False) -> Response:
        """/livez; with ``node`` /healthz, which also says 503 while the node is going away
        (deleted, or tainted ToBeDeletedByClusterAutoscaler), so that load balancers drain it."""
        now = self._clock()
        healthy = self.healthy()
        body: dict[str, object] = {"lastUpdated": _time(now if healthy else self.last_updated), "currentTime": _time(now)}
        if node:
            body["nodeEligible"] = self.node_eligible
            healthy = healthy and self.node_eligible
        body["healthy"] = healthy
        return Response(200 if healthy else 503, json.dumps(body).encode())


class HealthCheckServers:
    """The healthCheckNodePort servers: one per Service that has one, on every address."""

    def __init__(self, proxy: ProxyHealth, host: str | None = None):
        self.proxy = proxy
        self.host = host
        self._servers: dict[tuple[str, str], tuple[int, asyncio.Server]] = {}
        self._local: dict[tuple[str, str], int] = {}

    @property
    def ports(self) -> dict[tuple[str, str], int]:
        return {name: port for name, (port, _) in self._servers.items()}

    async def sync(self, wanted: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Open and close servers for ``wanted`` (Service -> (port, local ready endpoints)).
        A port that cannot be opened is logged and tried again at the next sync."""
        self._local = {name: count for name, (_, count) in wanted.items()}
        for name in list(self._servers):
            port, server = self._servers[name]
            if wanted.get(name, (None,))[0] != port:
                server.close()
                await server.wait_closed()
                del self._servers[name]
        for name, (port, _) in wanted.items():
            if name in self._servers:
                continue
            try:
                server = await serve(self.host, port, self._handler(name))
            except OSError as err:
                log.error("cannot open healthCheckNodePort", extra={"fields": {"service": "/".join(name), "port": port, "error": err.strerror}})
                continue
            self._servers[name] = (port, server)
            log.info("healthCheckNodePort open", extra={"fields": {"service": "/".join(name), "port": port}})

    async def close(self) -> None:
        await self.sync({})

    def _handler(self, name: tuple[str, str]) -> Handler:
        def answer(method: str, path: str) -> Response:
            count = self._local.get(name, 0)
            healthy = self.proxy.healthy()
            body = {"service": {"namespace": name[0], "name": name[1]}, "localEndpoints": count, "serviceProxyHealthy": healthy}
            ok = count > 0 and healthy
            return Response(200 if ok else 503, json.dumps(body, indent="\t").encode(), headers=(("X-Load-Balancing-Endpoint-Weight", str(count)),))

        return answer
