"""The Kubernetes API as a source for ``svcctl run`` (``--kubeconfig FILE``, ``--in-cluster``):
what kube-proxy watches, with the semantics of client-go's reflector.

What is watched, as kube-proxy does (cmd/kube-proxy/app/server.go):

- Services, without those that ask for another proxy (label selector
  ``!service.kubernetes.io/service-proxy-name``) and without headless ones (field selector
  ``spec.clusterIP!=None``: DNS serves them);
- EndpointSlices, without those of headless Services (``!service.kubernetes.io/headless``, the
  label the EndpointSlice controller puts on them). Endpoints and Pods are not read in cluster
  mode: the EndpointSlice controller has already resolved them;
- ServiceCIDRs (networking.k8s.io/v1, Kubernetes 1.33+; a cluster that does not serve them has
  none: the 404 is noted once and asked again now and then);
- this node's Node object (field selector ``metadata.name=NODE``).

Each object is one origin, ``api:KIND/NAMESPACE/NAME`` (``api:KIND/NAME`` for cluster-scoped
kinds), and its text the object as one line of JSON (problems: ``api:Service/shop/web:1:
Service shop/web: spec.ports[0].nodePort: ...``). The agent validates each object as it does a manifest file's: one the API server
accepted but svcctl cannot use is reported and left out, never fatal.

Per resource, a reflector (client-go's tools/cache/reflector.go, read for its semantics):

- list (``resourceVersion=0`` at first: the API server's watch cache answers; pages of 500 when
  it pages), which replaces what was known: objects gone from the list are Gone;
- then watch from the list's resourceVersion with ``allowWatchBookmarks=true`` and a
  ``timeoutSeconds`` drawn between ``watch_timeout`` and twice that (so that the watches of
  many nodes do not end together); each event moves the resourceVersion on, a BOOKMARK only
  that; a watch the server ends is started again at once from there;
- ``410 Gone`` (``Expired``: the resourceVersion is older than the server keeps history for),
  in a watch's ERROR event or as a response: list again, from the last resourceVersion (the
  list is then at least that new), and from the newest (``resourceVersion=""``) if the list
  says 410 too;
- a dropped connection, a timeout, ``429`` or a ``5xx``: back off (0.8 s doubling up to 30 s,
  each wait drawn between half and all of that) and resume from the last resourceVersion;
- ``401``/``403`` (an RBAC rule missing), any other refusal: one log line when it starts
  (resource, verb, code, the API server's message), counted in
  ``svcctl_api_errors_total{resource,code}`` every time, retried with the same backoff; what
  was known stays, and so do the rules made from it.

``Synced`` comes once every resource has been listed once: the agent makes no sync before, so a
start without the API server (or without the rights) leaves the rules as they are.

The connection comes from lightkube's configuration (kubeconfig files with their contexts,
certificate authorities, client certificates, tokens, token files re-read when the API server
says 401, exec plugins; the service account for ``--in-cluster``); the requests are our own,
on lightkube's HTTP client: lightkube's watch asks for no bookmarks, resumes after a 410 without
listing again (deletions meanwhile would be missed), and hands over typed objects, where svcctl
validates the objects as the API server sent them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, NamedTuple

import httpx2 as httpx

from ..problems import InvalidInput
from .metrics import Metrics
from .source import Event, Gone, Put, Synced

log = logging.getLogger("svcctl.agent")

ORIGIN_PREFIX = "api:"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
PAGE = 500  # client-go's pager.PageSize

# A dead connection (a node cut off, an API server gone without a word) is noticed by TCP
# keepalive within ~1 minute: first probe after 15 s idle, then every 15 s, 3 unanswered.
_KEEPALIVE = (
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
)


class Resource(NamedTuple):
    """One kind of object watched, and the selectors kube-proxy uses for it."""

    kind: str
    api_version: str
    plural: str
    namespaced: bool
    label_selector: str = ""
    field_selector: str = ""
    optional: bool = False  # an API server may not serve it (404): then there are none

    @property
    def path(self) -> str:
        prefix = "/apis" if "/" in self.api_version else "/api"
        return f"{prefix}/{self.api_version}/{self.plural}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def origin(self, meta: dict[str, Any]) -> str | None:
        """The origin of an object of this kind, None when its metadata names none."""
        name, namespace = meta.get("name"), meta.get("namespace")
        if not isinstance(name, str) or not name:
            return None
        if not self.namespaced:
            return f"{ORIGIN_PREFIX}{self.kind}/{name}"
        return f"{ORIGIN_PREFIX}{self.kind}/{namespace}/{name}" if isinstance(namespace, str) and namespace else None


def watched(node_name: str) -> tuple[Resource, ...]:
    """What svcctl run watches on a node named ``node_name``."""
    return (
        Resource("Service", "v1", "services", True, f"!{PROXY_NAME_LABEL}", "spec.clusterIP!=None"),
        Resource("EndpointSlice", "discovery.k8s.io/v1", "endpointslices", True, f"!{HEADLESS_LABEL}"),
        Resource("ServiceCIDR", "networking.k8s.io/v1", "servicecidrs", False, optional=True),
        Resource("Node", "v1", "nodes", False, field_selector=f"metadata.name={node_name}"),
    )


def object_text(resource: Resource, obj: dict[str, Any]) -> str:
    """An object as one line of JSON, as the API server sent it, with the kind and apiVersion
    that list items come without, and without managedFields (large, and of no use to svcctl).
    One line: json's C encoder (indenting takes the pure-Python one, 5x slower: 1.5 s for
    10,000 Services and their EndpointSlices); the field path of a problem tells where it is."""
    obj["kind"], obj["apiVersion"] = resource.kind, resource.api_version
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---- errors ---------------------------------------------------------------------------------


class ApiError(Exception):
    """The API server refused a request: its HTTP status and Status object (or what came instead)."""

    def __init__(self, code: int, reason: str = "", message: str = "", causes: tuple[str, ...] = ()):
        self.code, self.reason, self.message, self.causes = code, reason, message, causes
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")

    @classmethod
    def of(cls, code: int, body: bytes | dict[str, Any]) -> ApiError:
        """From a response body (a Status object, usually) or a watch ERROR event's object."""
        status: Any = body
        if isinstance(body, bytes):
            try:
                status = json.loads(body)
            except ValueError:
                return cls(code, "", body[:200].decode("utf-8", "replace").strip())
        if not isinstance(status, dict):
            return cls(code, "", str(status)[:200])
        details = status.get("details")
        found = details.get("causes") if isinstance(details, dict) else None
        causes = tuple(str(c.get("reason", "")) for c in found if isinstance(c, dict)) if isinstance(found, list) else ()
        given = status.get("code")
        return cls(given if isinstance(given, int) else code, str(status.get("reason", "")), str(status.get("message", "")), causes)

    @property
    def expired(self) -> bool:
        """The resourceVersion asked for is older than the server keeps (``410``)."""
        return self.code == 410

    @property
    def too_new(self) -> bool:
        """The resourceVersion asked for is newer than the server has seen (an API server
        behind the others)."""
        return "ResourceVersionTooLarge" in self.causes


class ProtocolError(Exception):
    """The server answered something that is not the list/watch protocol."""


def _code(err: Exception) -> str:
    """The ``code`` label of svcctl_api_errors_total."""
    if isinstance(err, ApiError):
        return str(err.code)
    if isinstance(err, httpx.TimeoutException):
        return "timeout"
    if isinstance(err, ProtocolError):
        return "protocol"
    return "connection"


def _describe(err: Exception) -> str:
    if isinstance(err, ApiError):
        return err.message or err.reason or f"HTTP {err.code}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


# ---- timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """client-go's reflector numbers (tests make them small)."""

    backoff_first: float = 0.8
    backoff_cap: float = 30.0
    watch_timeout: float = 300.0  # a watch asks the server to end it after this, up to twice this
    watch_grace: float = 30.0  # ... and is given up this long after that, if the server did not
    request_timeout: float = 60.0  # a list, and the wait for a watch's response headers


@dataclass
class Backoff:
    """Waits that double from ``first`` up to ``cap``, each drawn between half and all of that."""

    first: float
    cap: float
    failures: int = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2**self.failures)
        self.failures = min(self.failures + 1, 32)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.failures = 0


# ---- the connection -------------------------------------------------------------------------


class ConfigError(Exception):
    """No usable connection settings (a missing kubeconfig, no service account): exit 2."""


SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def connect(kubeconfig: str | None, in_cluster: bool, timing: Timing = Timing(), service_account: str = SERVICE_ACCOUNT) -> httpx.AsyncClient:
    """An HTTP client for the API server of a kubeconfig file (its current context) or of the
    pod's service account (its token, ca.crt and namespace files in ``service_account``, the
    server in KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT). Raises ConfigError."""
    from lightkube.config.client_adapter import ConnectionParams
    from lightkube.config.kubeconfig import KubeConfig

    try:
        if in_cluster:
            config = KubeConfig.from_service_account(service_account).get()
        else:
            assert kubeconfig is not None
            path = Path(kubeconfig).expanduser()  # as kubectl and lightkube take it
            config = KubeConfig.from_dict(_kubeconfig(str(path)), fname=path).get()
        if config is None:
            raise ConfigError("no context to use")
        if config.user is None:
            # A context without a user: requests without credentials (kubectl would ask).
            config = config._replace(user=_no_user())
        params = ConnectionParams(trust_env=False).httpx_params(config)
    except InvalidInput:
        raise
    except KeyError as err:  # the environment of a pod (KUBERNETES_SERVICE_HOST), or a name in the file
        where = "not in a pod: the environment" if in_cluster else kubeconfig
        raise ConfigError(f"{where}: {err.args[0]} is missing") from None
    except Exception as err:  # noqa: BLE001 - lightkube's, the file system's, YAML's and msgspec's errors of a broken kubeconfig
        first = (str(err) or type(err).__name__).splitlines()[0]
        raise ConfigError(f"no service account here: {first}" if in_cluster else first) from None
    transport = httpx.AsyncHTTPTransport(verify=params["verify"], socket_options=_KEEPALIVE, trust_env=False)
    return httpx.AsyncClient(
        base_url=params["base_url"], auth=params["auth"], transport=transport, trust_env=False,
        timeout=httpx.Timeout(timing.request_timeout, connect=10.0),
        headers={"Accept": "application/json", "User-Agent": "svcctl"},
    )


def _kubeconfig(path: str) -> Any:
    """The kubeconfig file's content, read and parsed as --config is: a syntax error is one line
    at FILE:LINE:COLUMN (raises InvalidInput), not the first words of the parser's message."""
    from ..load import parse_yaml_document
    from ..sources import read_config

    data, problems = parse_yaml_document(read_config(path, "kubeconfig"))
    if problems:
        raise InvalidInput(problems)
    if not isinstance(data, dict):
        raise ConfigError("a kubeconfig file must be a mapping")
    return data


def _no_user() -> Any:
    from lightkube.config.models import User

    return User()


# ---- the reflector --------------------------------------------------------------------------


_HINTS = {
    "401": "the credentials of the kubeconfig or service account are not accepted",
    "403": "svcctl needs get, list and watch on services, endpointslices.discovery.k8s.io, "
    "servicecidrs.networking.k8s.io and nodes (the ClusterRole of deploy/daemonset.yaml)",
    "404": "not served by this API server (ServiceCIDRs: Kubernetes 1.33 and later); taken as none",
}


class _Trouble:
    """How a resource's requests fail: every failure counted, one log line when a kind of failure
    starts (not at each retry), one when requests succeed again."""

    def __init__(self, resource: Resource, metrics: Metrics | None):
        self.resource = resource
        self.metrics = metrics
        self.current: tuple[str, str] | None = None  # (verb, code) being logged

    def failed(self, verb: str, err: Exception, retry_in: float) -> None:
        code = _code(err)
        if self.metrics is not None:
            self.metrics.api_errors.labels(self.resource.plural, code).inc()
        if self.current == (verb, code):
            return
        self.current = (verb, code)
        fields: dict[str, Any] = {"resource": self.resource.plural, "verb": verb, "code": code, "error": _describe(err)}
        hint = _HINTS.get(code)
        if hint:
            fields["hint"] = hint
        fields["retry_in_s"] = round(retry_in, 1)
        if isinstance(err, ApiError) and err.code < 500 and err.code != 429:
            log.error("Kubernetes API request refused", extra={"fields": fields})
        else:  # the network, a restarting API server: expected now and then, resumed
            log.warning("Kubernetes API request failed", extra={"fields": fields})

    def succeeded(self) -> None:
        if self.current is not None:
            log.info("Kubernetes API requests succeed again", extra={"fields": {"resource": self.resource.plural}})
            self.current = None


class Reflector:
    """Keeps what the API server holds of one resource, reporting each change as an event."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        resource: Resource,
        emit: Callable[[Event], None],
        listed: Callable[[Resource], None],
        metrics: Metrics | None = None,
        timing: Timing = Timing(),
    ):
        self.client = client
        self.resource = resource
        self.emit = emit
        self.listed = listed
        self.metrics = metrics
        self.timing = timing
        self.known: dict[str, str] = {}  # origin -> the object's resourceVersion
        self.resource_version = ""  # the last one seen: of a list, an event, a bookmark
        self.backoff = Backoff(timing.backoff_first, timing.backoff_cap)
        self._trouble = _Trouble(resource, metrics)
        self._has_listed = False

    async def run(self) -> None:
        """List, then watch, for ever (until cancelled)."""
        list_from = "0"
        while True:
            try:
                list_from = await self._list(list_from)
            except _Retry as retry:
                list_from = retry.list_from
                continue
            await self._watch()
            list_from = self.resource_version  # a 410: list again, at least as new as what was seen

    # -- list --

    async def _list(self, resource_version: str) -> str:
        """One list, paged; replaces what is known. Returns where the next list starts."""
        try:
            items, version = await self._list_pages(resource_version)
        except ApiError as err:
            if (err.expired or err.too_new) and resource_version != "":
                self._count(err)
                raise _Retry("") from None  # at once, from the newest: client-go's relistResourceVersion
            if err.code == 404 and self.resource.optional and not self._has_listed:
                # Not served here (ServiceCIDRs before Kubernetes 1.33): none there, for now.
                # (A 404 for Services is a wrong server address: waited out, never taken as none.)
                self._listed_once()
            await self._fail("list", err)
            raise _Retry(resource_version) from None
        except (httpx.TransportError, ProtocolError) as err:
            await self._fail("list", err)
            raise _Retry(resource_version) from None
        self._trouble.succeeded()
        self.backoff.reset()
        if self.metrics is not None:
            self.metrics.api_lists.labels(self.resource.plural).inc()
        self._replace(items)
        self.resource_version = version
        self._listed_once()
        return version

    async def _list_pages(self, resource_version: str) -> tuple[list[dict[str, Any]], str]:
        params = self._selectors()
        # A list from a given resourceVersion is answered by the watch cache only without a limit
        # (client-go's reflector pages only "0" and "").
        paged = resource_version in ("0", "")
        if resource_version:
            params["resourceVersion"] = resource_version
        if paged:
            params["limit"] = str(PAGE)
        items: list[dict[str, Any]] = []
        while True:
            response = await self.client.get(self.resource.path, params=params)
            body = response.content
            if response.status_code != 200:
                err = ApiError.of(response.status_code, body)
                if err.expired and "continue" in params:
                    # The continue token outlived the history: the whole list again, in one page.
                    params = {k: v for k, v in params.items() if k not in ("continue", "limit")}
                    items = []
                    continue
                raise err
            page = _json(body)
            meta = page.get("metadata")
            found = page.get("items")
            if not isinstance(meta, dict) or not isinstance(found, (list, type(None))):
                raise ProtocolError(f"{self.resource.path}: not a list")
            items += [i for i in found or () if isinstance(i, dict)]
            token = meta.get("continue")
            if not token:
                version = meta.get("resourceVersion")
                if not isinstance(version, str) or not version:
                    raise ProtocolError(f"{self.resource.path}: a list without metadata.resourceVersion")
                return items, version
            params["continue"] = str(token)
            params.pop("resourceVersion", None)  # a continue token carries it

    def _replace(self, items: list[dict[str, Any]]) -> None:
        now: dict[str, str] = {}
        for obj in items:
            named = self._named(obj)
            if named is not None:
                origin, version = named
                now[origin] = version
                if self.known.get(origin) != version:
                    self.emit(Put(origin, object_text(self.resource, obj), True))
        for origin in sorted(self.known.keys() - now.keys()):
            self.emit(Gone(origin))
        self.known = now

    # -- watch --

    async def _watch(self) -> None:
        """Watch until the server says 410 (then return: list again); everything else is resumed
        from the last resourceVersion, after a backoff unless the server just ended the watch."""
        while True:
            started = time.monotonic()
            try:
                events = await self._watch_once()
            except ApiError as err:
                if err.expired:
                    self._count(err)
                    log.info("watch expired, listing again", extra={"fields": {"resource": self.resource.plural, "resource_version": self.resource_version}})
                    await asyncio.sleep(self.backoff.next())  # client-go waits before every relist
                    return
                await self._fail("watch", err)
                continue
            except (httpx.TransportError, ProtocolError, TimeoutError) as err:
                await self._fail("watch", err)
                continue
            self._trouble.succeeded()
            if events == 0 and time.monotonic() - started < 1.0:
                # client-go's "very short watch": something between us and the server is wrong.
                await self._fail("watch", ProtocolError("the watch ended at once, without events"))
                continue
            self.backoff.reset()

    async def _watch_once(self) -> int:
        """One watch request; returns how many events it carried when the server ended it."""
        seconds = int(self.timing.watch_timeout * (1 + random.random()))
        params = {
            **self._selectors(),
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(seconds, 1)),
        }
        events = 0
        timeout = httpx.Timeout(self.timing.request_timeout, connect=10.0, read=None)
        async with asyncio.timeout(seconds + self.timing.watch_grace):
            async with self.client.stream("GET", self.resource.path, params=params, timeout=timeout) as response:
                if response.status_code != 200:
                    raise ApiError.of(response.status_code, await response.aread())
                self._trouble.succeeded()
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    self._event(_json(line.encode()))
                    events += 1
        return events

    def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            raise ProtocolError(f"a watch event without an object: {str(event)[:200]}")
        if kind == "ERROR":
            raise ApiError.of(500, obj)
        meta = obj.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not isinstance(version, str) or not version:
            raise ProtocolError(f"a {kind} event without metadata.resourceVersion")
        if kind == "BOOKMARK":
            self.resource_version = version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise ProtocolError(f'unknown watch event type "{kind}"')
        if obj.get("kind", self.resource.kind) != self.resource.kind:
            log.warning("watch event of another kind skipped", extra={"fields": {"resource": self.resource.plural, "kind": obj.get("kind")}})
        elif kind == "DELETED":
            origin = self.resource.origin(meta) if isinstance(meta, dict) else None
            if origin is not None and self.known.pop(origin, None) is not None:
                self.emit(Gone(origin))
        else:
            named = self._named(obj)
            if named is not None:
                self.known[named[0]] = version
                self.emit(Put(named[0], object_text(self.resource, obj), True))
        self.resource_version = version

    # -- helpers --

    def _named(self, obj: dict[str, Any]) -> tuple[str, str] | None:
        """(origin, resourceVersion) of an object; None (logged) when it names no origin."""
        meta = obj.get("metadata")
        origin = self.resource.origin(meta) if isinstance(meta, dict) else None
        if origin is None or not isinstance(meta, dict):
            log.warning("object without a name skipped", extra={"fields": {"resource": self.resource.plural}})
            return None
        return origin, str(meta.get("resourceVersion", ""))

    def _selectors(self) -> dict[str, str]:
        params = {}
        if self.resource.label_selector:
            params["labelSelector"] = self.resource.label_selector
        if self.resource.field_selector:
            params["fieldSelector"] = self.resource.field_selector
        return params

    def _listed_once(self) -> None:
        if not self._has_listed:
            self._has_listed = True
            self.listed(self.resource)

    def _count(self, err: Exception) -> None:
        if self.metrics is not None:
            self.metrics.api_errors.labels(self.resource.plural, _code(err)).inc()

    async def _fail(self, verb: str, err: Exception) -> None:
        delay = self.backoff.next()
        self._trouble.failed(verb, err, delay)
        await asyncio.sleep(delay)


class _Retry(Exception):
    def __init__(self, list_from: str):
        self.list_from = list_from


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as err:
        raise ProtocolError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise ProtocolError("not a JSON object")
    return value


# ---- the source -----------------------------------------------------------------------------


@dataclass
class KubeSource:
    """The Kubernetes API as a svcctl.agent.source.Source: one reflector per watched resource."""

    client: httpx.AsyncClient
    node_name: str
    metrics: Metrics | None = None
    timing: Timing = Timing()
    resources: tuple[Resource, ...] = ()
    _queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue, init=False)
    _waiting: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.resources = self.resources or watched(self.node_name)

    def stop(self) -> None:
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Event]:
        self._waiting = {r.plural for r in self.resources}
        reflectors = [Reflector(self.client, r, self._queue.put_nowait, self._listed, self.metrics, self.timing) for r in self.resources]
        tasks = [asyncio.create_task(_guarded(r)) for r in reflectors]
        try:
            while True:
                event = await self._queue.get()
                if event is None:
                    return
                yield event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.client.aclose()

    def _listed(self, resource: Resource) -> None:
        self._waiting.discard(resource.plural)
        if not self._waiting:
            self._queue.put_nowait(Synced())


async def _guarded(reflector: Reflector) -> None:
    """A reflector for ever: a bug in it is logged and it starts over (what it knew stays known)."""
    while True:
        try:
            await reflector.run()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a bug in svcctl: logged, retried, never fatal
            log.error("internal error (a bug in svcctl)", extra={"fields": {"resource": reflector.resource.plural, "error": f"{type(err).__name__}: {err}"}})
            await asyncio.sleep(reflector.backoff.next())
