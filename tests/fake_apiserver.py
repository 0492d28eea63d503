"""A Kubernetes API server for svcctl's tests: the list/watch protocol of the resources ``svcctl
run`` watches, spoken as kube-apiserver speaks it, over HTTPS with a bearer token.

What it does as the real one does (apimachinery's list/watch semantics, the watch cache):

- one resourceVersion counter for everything (etcd's revision); each change of an object
  gives it the next one; history is kept from the start until ``expire`` compacts it;
- ``GET`` a collection (``/api/v1/services``, ``/apis/discovery.k8s.io/v1/endpointslices``,
  ``/apis/networking.k8s.io/v1/servicecidrs``, ``/api/v1/nodes``): a ``<Kind>List`` whose
  ``metadata.resourceVersion`` is the revision it was read at and whose items have no kind and
  apiVersion; ``resourceVersion=0`` is answered whole (the watch cache ignores ``limit`` then),
  otherwise ``limit`` pages with ``continue`` tokens that read the same revision, and a token
  older than the compacted revision is ``410 Expired``; a resourceVersion newer than the
  server's is ``504`` with the cause ``ResourceVersionTooLarge``;
- ``?watch=true``: ``200``, then one JSON event per line (``{"type": ..., "object": ...}``) in
  a chunked stream: without a resourceVersion (or ``0``) synthetic ``ADDED`` events of what
  exists, then changes; from resourceVersion N the changes after N, or a single ``ERROR`` event
  with a ``410 Expired`` Status when N is older than the compacted revision. A change that makes
  an object match the selectors is ``ADDED``, one that makes it stop matching ``DELETED``.
  ``BOOKMARK`` events (an empty object of the kind with only ``metadata.resourceVersion``) when
  asked for with ``allowWatchBookmarks=true``: on ``bookmark()``, and before the server ends the
  watch at ``timeoutSeconds``;
- ``labelSelector`` (``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``) and ``fieldSelector``
  (``metadata.name``, ``metadata.namespace``, and ``spec.clusterIP`` for Services; others are
  ``400``), comma-separated requirements all of which must hold;
- refusals as Status objects: ``401`` without the bearer token, ``403`` (RBAC's message) for a
  denied resource and verb, ``404`` for what is not served, ``5xx`` injected with ``fail``.

The test drives it: ``apply`` changes (watch events as the API server writes them: a sequence
file of tests/kube/ is a list of them, see tests/kube/README.md), ``drop_watches`` (connections
cut without the end of the chunked stream), ``expire`` (compaction: watches from before get
410; with ``notify`` the open ones get an ERROR event too), ``deny``/``allow``, ``fail``,
``bookmark``; ``requests`` lists what was asked. In a thread of its own (``FakeApiServer``) or
as a process (``python tests/fake_apiserver.py --help``: commands as JSON lines on standard
input, for the network-namespace lab).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import ssl
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple
from urllib.parse import parse_qs, urlsplit


class Kind(NamedTuple):
    api_version: str
    kind: str
    namespaced: bool
    fields: tuple[str, ...]  # field selectors it supports (besides metadata.name/namespace)


KINDS = {
    "services": Kind("v1", "Service", True, ("spec.clusterIP", "spec.type")),
    "endpointslices": Kind("discovery.k8s.io/v1", "EndpointSlice", True, ("addressType",)),
    "servicecidrs": Kind("networking.k8s.io/v1", "ServiceCIDR", False, ()),
    "nodes": Kind("v1", "Node", False, ("spec.unschedulable",)),
}
RESOURCE_OF_KIND = {k.kind: r for r, k in KINDS.items()}


def collection_path(resource: str) -> str:
    kind = KINDS[resource]
    prefix = "/apis" if "/" in kind.api_version else "/api"
    return f"{prefix}/{kind.api_version}/{resource}"


PATHS = {collection_path(r): r for r in KINDS}
FIRST_REVISION = 1000


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A metav1.Status as the API server writes it (field order as Go marshals it)."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def forbidden(resource: str, verb: str, user: str) -> dict[str, Any]:
    group = KINDS[resource].api_version.rpartition("/")[0]
    qualified = f"{resource}.{group}" if group else resource
    details = {"group": group, "kind": resource} if group else {"kind": resource}
    message = f'{qualified} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}" at the cluster scope'
    return status(403, "Forbidden", message, details)


def bookmark_object(resource: str, revision: int) -> dict[str, Any]:
    """The object of a BOOKMARK event: an empty one of the kind, only its resourceVersion set
    (what Go's encoder makes of a zero value: creationTimestamp null, empty spec and status)."""
    kind = KINDS[resource]
    obj: dict[str, Any] = {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": {"resourceVersion": str(revision), "creationTimestamp": None}}
    if resource == "services":
        obj.update(spec={}, status={"loadBalancer": {}})
    elif resource == "endpointslices":
        obj.update(addressType="", endpoints=None)
    else:
        obj.update(spec={}, status={})
    return obj


# ---- selectors ------------------------------------------------------------------------------


class SelectorError(ValueError):
    pass


def _requirements(text: str) -> list[tuple[str, str, str]]:
    """``a=b,!c,d!=e`` -> [(key, op, value)], op one of = != exists !exists."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "!=" in part:
            key, value = part.split("!=", 1)
            out.append((key.strip(), "!=", value.strip()))
        elif "=" in part:
            key, value = part.replace("==", "=", 1).split("=", 1)
            out.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            out.append((part[1:].strip(), "!exists", ""))
        else:
            out.append((part, "exists", ""))
    return out


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Selector:
    labels: tuple[tuple[str, str, str], ...] = ()
    fields: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, resource: str, label_text: str, field_text: str) -> Selector:
        fields = _requirements(field_text)
        allowed = ("metadata.name", "metadata.namespace", *KINDS[resource].fields)
        for key, op, _ in fields:
            if op not in ("=", "!=") or key not in allowed:
                raise SelectorError(f'"{key}" is not a known field selector: only "{", ".join(allowed)}"')
        return cls(tuple(_requirements(label_text)), tuple(fields))

    def matches(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for key, op, value in self.labels:
            if op == "exists" and key not in labels or op == "!exists" and key in labels:
                return False
            if op == "=" and labels.get(key) != value or op == "!=" and labels.get(key) == value:
                return False
        for key, op, value in self.fields:
            if (_field(obj, key) == value) != (op == "="):
                return False
        return True


# ---- the store ------------------------------------------------------------------------------


class Change(NamedTuple):
    revision: int
    resource: str
    key: tuple[str, str]
    old: dict[str, Any] | None  # before
    new: dict[str, Any] | None  # after; None: deleted
    last: dict[str, Any]  # the object as the event carries it (a deleted one: its last state)


class Watch:
    def __init__(self, resource: str, selector: Selector, bookmarks: bool):
        self.resource, self.selector, self.bookmarks = resource, selector, bookmarks
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()  # ("event", obj) | ("end", None) | ("drop", None)

    def offer(self, change: Change) -> None:
        event = self.event_of(change)
        if event is not None:
            self.queue.put_nowait(("event", event))

    def event_of(self, change: Change) -> dict[str, Any] | None:
        was = change.old is not None and self.selector.matches(change.old)
        now = change.new is not None and self.selector.matches(change.new)
        if was and now:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        elif was:
            kind = "DELETED"
        else:
            return None
        return {"type": kind, "object": change.last}


@dataclass
class Store:
    revision: int = FIRST_REVISION
    compacted: int = 0  # watches and continue tokens from before this revision are 410
    objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=lambda: {r: {} for r in KINDS})
    history: list[Change] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)

    def apply(self, event: dict[str, Any]) -> int:
        """Take a watch event (ADDED, MODIFIED, DELETED) as a change of the cluster; its recorded
        resourceVersion is kept when it is newer than the server's. Returns the revision."""
        kind, obj = event["type"], copy.deepcopy(event["object"])
        resource = RESOURCE_OF_KIND[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", "") if KINDS[resource].namespaced else "", meta["name"])
        recorded = meta.get("resourceVersion")
        self.revision = max(self.revision + 1, int(recorded) if str(recorded or "").isdigit() else 0)
        meta["resourceVersion"] = str(self.revision)
        old = self.objects[resource].get(key)
        if kind == "DELETED":
            if old is None:
                raise KeyError(f"{resource} {key} does not exist")
            new = None
            del self.objects[resource][key]
        else:
            meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{resource}/{key}")))
            meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
            if old is not None:
                meta["uid"] = old["metadata"]["uid"]
            new = obj
            self.objects[resource][key] = obj
        change = Change(self.revision, resource, key, old, new, obj)
        self.history.append(change)
        for watch in self.watches:
            if watch.resource == resource:
                watch.offer(change)
        return self.revision

    def snapshot(self, resource: str, revision: int) -> list[dict[str, Any]]:
        """The objects of a resource as they were at a revision, in key order (etcd's)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for change in self.history:
            if change.revision > revision:
                break
            if change.resource == resource:
                if change.new is None:
                    found.pop(change.key, None)
                else:
                    found[change.key] = change.new
        return [found[k] for k in sorted(found)]

    def since(self, resource: str, revision: int) -> Iterable[Change]:
        return (c for c in self.history if c.resource == resource and c.revision > revision)


# ---- HTTP -----------------------------------------------------------------------------------


class Request(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    authorization: str

    @property
    def verb(self) -> str:
        return "watch" if self.query.get("watch") in ("true", "1") else "list"

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted(self.query.items()))
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    url = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    return Request(method, url.path, query, headers.get("authorization", ""))


def _respond(writer: asyncio.StreamWriter, code: int, body: dict[str, Any]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {code} {_REASONS.get(code, '')}\r\nAudit-Id: {uuid.uuid4()}\r\nCache-Control: no-cache, private\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    writer.write(head.encode() + data)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Server:
    """The protocol, on one asyncio loop (everything that changes the store runs on it)."""

    def __init__(self, token: str = "", user: str = "system:serviceaccount:kube-system:svcctl"):
        self.store = Store()
        self.token = token
        self.user = user
        self.denied: set[tuple[str, str]] = set()  # (resource, verb)
        self.not_served: set[str] = set()
        self.failures: list[tuple[int, str | None]] = []  # (status, resource or None) for the next requests
        self.requests: list[Request] = []
        self._open: list[tuple[Watch, asyncio.StreamWriter]] = []

    # -- control (on the loop) --

    def drop_watches(self) -> int:
        """Cut every open watch connection (no end of the chunked stream): a network failure."""
        count = len(self._open)
        for watch, _ in self._open:
            watch.queue.put_nowait(("drop", None))
        return count

    def expire(self, notify: bool = False) -> None:
        """Compact the history up to now: watches and continue tokens from before are 410."""
        self.store.compacted = self.store.revision
        if notify:
            for watch, _ in self._open:
                watch.queue.put_nowait(("error", status(410, "Expired", f"too old resource version: {self.store.revision - 1} ({self.store.revision})")))

    def bookmark(self) -> None:
        for watch, _ in self._open:
            if watch.bookmarks:
                watch.queue.put_nowait(("event", {"type": "BOOKMARK", "object": bookmark_object(watch.resource, self.store.revision)}))

    def open_watches(self, resource: str | None = None) -> int:
        return sum(1 for w, _ in self._open if resource is None or w.resource == resource)

    # -- serving --

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if not await self._serve(request, writer, reader):
                    return
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _serve(self, request: Request, writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> bool:
        """Answer one request; False when the connection is done with."""
        resource = PATHS.get(request.path)
        if self.token and request.authorization != f"Bearer {self.token}":
            _respond(writer, 401, status(401, "Unauthorized", "Unauthorized"))
            return True
        if resource is None or resource in self.not_served:
            _respond(writer, 404, status(404, "NotFound", "the server could not find the requested resource", {}))
            return True
        if request.method != "GET":
            _respond(writer, 405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
            return True
        for i, (code, only) in enumerate(self.failures):
            if only in (None, resource):
                del self.failures[i]
                reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests"}.get(code, "InternalError")
                _respond(writer, code, status(code, reason, f"injected failure {code}"))
                return True
        if (resource, request.verb) in self.denied:
            _respond(writer, 403, forbidden(resource, request.verb, self.user))
            return True
        try:
            selector = Selector.parse(resource, request.query.get("labelSelector", ""), request.query.get("fieldSelector", ""))
        except SelectorError as err:
            _respond(writer, 400, status(400, "BadRequest", str(err)))
            return True
        version = request.query.get("resourceVersion", "")
        if version and not version.isdigit():
            _respond(writer, 400, status(400, "BadRequest", f'resourceVersion: Invalid value: "{version}": must be a number'))
            return True
        if request.verb == "watch":
            await self._watch(resource, selector, request, writer, reader)
            return False
        self._list(resource, selector, request, writer)
        return True

    def _list(self, resource: str, selector: Selector, request: Request, writer: asyncio.StreamWriter) -> None:
        kind, store = KINDS[resource], self.store
        version, token = request.query.get("resourceVersion", ""), request.query.get("continue", "")
        start = ""
        if token:
            try:
                position = json.loads(base64.urlsafe_b64decode(token))
                revision, start = int(position["rv"]), str(position["start"])
            except (ValueError, KeyError, TypeError):
                _respond(writer, 400, status(400, "BadRequest", "continue key is not valid"))
                return
            if revision < store.compacted:
                message = ("The provided continue parameter is too old to display a consistent list result. You can start a new list "
                           "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
                           "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
                           "modified, or deleted between the time the first chunk was returned and now may show up in the list.")
                _respond(writer, 410, status(410, "Expired", message))
                return
        elif version.isdigit() and int(version) > store.revision:
            _respond(writer, 504, status(504, "Timeout", f"Too large resource version: {version}, current: {store.revision}",
                                         {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}))
            return
        else:
            revision = store.revision
        items = [o for o in store.snapshot(resource, revision) if selector.matches(o)]
        items = [o for o in items if _key(o) > start] if start else items
        limit = int(request.query["limit"]) if request.query.get("limit", "").isdigit() and version != "0" else 0
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if limit and len(items) > limit:
            items = items[:limit]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"rv": revision, "start": _key(items[-1])}).encode()).decode()
            meta["remainingItemCount"] = len([o for o in store.snapshot(resource, revision) if selector.matches(o) and _key(o) > _key(items[-1])])
        bare = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
        _respond(writer, 200, {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": meta, "items": bare})

    async def _watch(self, resource: str, selector: Selector, request: Request, writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
        store = self.store
        version = request.query.get("resourceVersion", "")
        timeout = float(request.query["timeoutSeconds"]) if request.query.get("timeoutSeconds", "").isdigit() else 1800.0
        watch = Watch(resource, selector, request.query.get("allowWatchBookmarks") == "true")
        writer.write(b"HTTP/1.1 200 OK\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        # What came before the watch, in the same step as subscribing (nothing slips in between).
        if version in ("", "0"):
            first = [{"type": "ADDED", "object": o} for o in store.objects[resource].values() if selector.matches(o)]
        elif int(version) < store.compacted:
            first = [{"type": "ERROR", "object": status(410, "Expired", f"too old resource version: {version} ({store.compacted})")}]
        elif int(version) > store.revision:
            first = [{"type": "ERROR", "object": status(504, "Timeout", f"Too large resource version: {version}, current: {store.revision}",
                                                         {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]})}]
        else:
            first = [e for c in store.since(resource, int(version)) if (e := watch.event_of(c)) is not None]
        for event in first:
            watch.queue.put_nowait(("event", event))
        if first and first[-1]["type"] == "ERROR":
            watch.queue.put_nowait(("end", None))
        store.watches.append(watch)
        self._open.append((watch, writer))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def client_gone() -> None:  # the client closed the connection: the watch ends
            await reader.read()
            watch.queue.put_nowait(("drop", None))

        gone = asyncio.create_task(client_gone())
        try:
            while True:
                try:
                    what, value = await asyncio.wait_for(watch.queue.get(), max(deadline - loop.time(), 0))
                except asyncio.TimeoutError:
                    if watch.bookmarks:  # the watch cache's last word before a timeout
                        writer.write(_chunk(json.dumps({"type": "BOOKMARK", "object": bookmark_object(resource, store.revision)}).encode() + b"\n"))
                    what, value = "end", None
                if what == "drop":
                    writer.transport.abort()
                    return
                if what == "end":
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    return
                event = value if what == "event" else {"type": "ERROR", "object": value}
                writer.write(_chunk(json.dumps(event, separators=(",", ":")).encode() + b"\n"))
                await writer.drain()
                if what == "error":
                    watch.queue.put_nowait(("end", None))
        finally:
            gone.cancel()
            store.watches.remove(watch)
            self._open.remove((watch, writer))


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


# ---- certificates and kubeconfig ------------------------------------------------------------


class Certs(NamedTuple):
    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Certs:
    """A certificate authority and a server certificate it signed, for 127.0.0.1, ::1 and
    localhost (openssl, EC P-256, valid two days)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *argv: subprocess.run(["openssl", *argv], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=fake-apiserver-ca")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=kube-apiserver")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(cert))
    return Certs(ca, cert, key)


def write_kubeconfig(path: Path, server: str, ca: Path, token: str = "", token_file: Path | None = None) -> Path:
    """A kubeconfig as kubeadm writes them: one cluster, one user, one current context."""
    user: dict[str, Any] = {"tokenFile": str(token_file)} if token_file else {"token": token} if token else {}
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "svcctl@test",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "svcctl", "user": user}],
        "contexts": [{"name": "svcctl@test", "context": {"cluster": "test", "user": "svcctl"}}],
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def read_sequence(path: Path) -> list[dict[str, Any]]:
    """A sequence file: one watch event per line (tests/kube/README.md)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- in a thread ----------------------------------------------------------------------------


class FakeApiServer:
    """The server on a loop of its own, in a thread; every method may be called from the test."""

    def __init__(self, certs: Certs | None = None, token: str = "", host: str = "127.0.0.1"):
        self.server = Server(token)
        self.certs, self.host, self.port = certs, host, 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-apiserver", daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.certs else 'http'}://{self.host}:{self.port}"

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        self.port = self.call(self._listen)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function`` (a coroutine function, or a plain one) on the server's loop."""
        async def run() -> Any:
            value = function(*args)
            return await value if asyncio.iscoroutine(value) else value
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _listen(self) -> int:
        context = None
        if self.certs:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certs.cert, self.certs.key)
        self._server = await asyncio.start_server(self.server.handle, self.host, 0, ssl=context)
        return int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        self.server.drop_watches()
        self._server.close()

    # -- what tests do --

    def apply(self, *events: dict[str, Any]) -> int:
        return self.call(lambda: [self.server.store.apply(e) for e in events][-1])

    def drop_watches(self) -> int:
        return self.call(self.server.drop_watches)

    def expire(self, notify: bool = False) -> None:
        self.call(self.server.expire, notify)

    def bookmark(self) -> None:
        self.call(self.server.bookmark)

    def deny(self, resource: str, *verbs: str) -> None:
        self.call(lambda: self.server.denied.update((resource, v) for v in verbs))

    def allow(self, resource: str, *verbs: str) -> None:
        self.call(lambda: self.server.denied.difference_update((resource, v) for v in verbs))

    def fail(self, code: int, count: int = 1, resource: str | None = None) -> None:
        self.call(lambda: self.server.failures.extend([(code, resource)] * count))

    def not_served(self, resource: str) -> None:
        self.call(self.server.not_served.add, resource)

    def requests(self) -> list[Request]:
        return self.call(lambda: list(self.server.requests))

    def open_watches(self, resource: str | None = None) -> int:
        return self.call(self.server.open_watches, resource)

    def objects(self, resource: str) -> list[dict[str, Any]]:
        return self.call(lambda: copy.deepcopy(list(self.server.store.objects[resource].values())))

    @property
    def revision(self) -> int:
        return self.call(lambda: self.server.store.revision)


# ---- as a process ---------------------------------------------------------------------------

_COMMANDS = {
    "apply": lambda s, c: [s.store.apply(e) for e in c["events"]][-1],
    "drop": lambda s, c: s.drop_watches(),
    "expire": lambda s, c: s.expire(c.get("notify", False)),
    "bookmark": lambda s, c: s.bookmark(),
    "deny": lambda s, c: s.denied.update((c["resource"], v) for v in c["verbs"]),
    "allow": lambda s, c: s.denied.difference_update((c["resource"], v) for v in c["verbs"]),
    "fail": lambda s, c: s.failures.extend([(c["code"], c.get("resource"))] * c.get("count", 1)),
    "watches": lambda s, c: s.open_watches(c.get("resource")),
    "requests": lambda s, c: [str(r) for r in s.requests],
    "revision": lambda s, c: s.store.revision,
}


async def _main(args: argparse.Namespace) -> None:
    certs = make_certs(Path(args.certs)) if args.certs else None
    context = None
    if certs:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
    server = Server(args.token)
    host, _, port = args.listen.rpartition(":")
    listening = await asyncio.start_server(server.handle, host.strip("[]"), int(port), ssl=context)
    print(json.dumps({"port": listening.sockets[0].getsockname()[1], "ca": str(certs.ca) if certs else None}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)  # a command may carry a whole cluster
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        try:
            command = json.loads(line)
            reply = {"ok": _COMMANDS[command["op"]](server, command)}
        except Exception as err:  # noqa: BLE001 - reported to the test
            reply = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(reply), flush=True)
    server.drop_watches()
    listening.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Commands on standard input, one JSON object per line, each answered with one line: "
                                     + ", ".join(f'{{"op": "{name}", ...}}' for name in _COMMANDS) + ". It ends with its input.")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any; the port is printed)")
    parser.add_argument("--certs", help="make a CA and a server certificate in this directory and serve HTTPS")
    parser.add_argument("--token", default="", help="the bearer token requests must carry")
    asyncio.run(_main(parser.parse_args()))
