"""``svcctl run --kubeconfig``'s source (svcctl.agent.kube) against the fake API server of
tests/fake_apiserver.py, over HTTPS with a CA made for the test and a bearer token: what it asks
for (client-go's reflector, kube-proxy's selectors), what it reports, and that no change is lost
whatever the server does: a dropped watch, a 410, 5xx, a 403, a bookmark. Sequences of changes
come from tests/kube/ (their format: tests/kube/README.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Callable

import pytest

from fake_apiserver import FakeApiServer, Selector, make_certs, read_sequence, write_kubeconfig
from svcctl.problems import InvalidInput
from svcctl.agent.kube import ApiError, Backoff, ConfigError, KubeSource, Timing, connect, object_text, watched
from svcctl.agent.metrics import Metrics
from svcctl.agent.source import Event, Gone, Put, Synced
from svcctl.agent.reconcile import Syncing
from svcctl.agent.state import State
from svcctl.load import Inputs, Source
from svcctl.nftables.render import render_ruleset
from svcctl.nftables.syncer import Syncer
from svcctl.options import build_options
from svcctl.pipeline import compile_rules

SEQUENCES = Path(__file__).parent / "kube"
TOKEN = "k8s-token-for-tests"
NODE = "node-1"
FAST = Timing(backoff_first=0.02, backoff_cap=0.1, watch_timeout=30, watch_grace=5, request_timeout=5)
OPTIONS = build_options({"node-name": NODE, "cluster-cidr": ["10.244.0.0/16"]})


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def api(certs):
    with FakeApiServer(certs, token=TOKEN) as server:
        yield server


@pytest.fixture
def kubeconfig(api, certs, tmp_path) -> str:
    return str(write_kubeconfig(tmp_path / "kubeconfig", api.url, certs.ca, token=TOKEN))


class Mirror:
    """What a KubeSource reported, applied: origin -> object, and the events in order. The
    source is read by a task of its own (waits with a timeout must not cancel its generator)."""

    def __init__(self, source: KubeSource):
        self.source = source
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.synced = False
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.source.events():
            self._queue.put_nowait(event)
        self._queue.put_nowait(None)

    async def until(self, predicate: Callable[[Mirror], bool], what: str, timeout: float = 5.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self):
                    self.take(await self._queue.get())
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; events: {[type(e).__name__ + ' ' + getattr(e, 'origin', '') for e in self.events]}") from None

    async def settle(self, seconds: float = 0.3) -> None:
        """Take whatever comes within ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    self.take(await self._queue.get())
        except TimeoutError:
            pass

    def take(self, event: Event | None) -> None:
        assert event is not None, "the source ended"
        self.events.append(event)
        if isinstance(event, Put):
            assert event.is_json and not event.error
            self.objects[event.origin] = json.loads(event.text)
        elif isinstance(event, Gone):
            del self.objects[event.origin]
        elif isinstance(event, Synced):
            assert not self.synced, "Synced twice"
            self.synced = True

    def versions(self) -> dict[str, str]:
        return {o: obj["metadata"]["resourceVersion"] for o, obj in self.objects.items()}

    async def close(self) -> None:
        self.source.stop()
        await self._reader
        while (event := self._queue.get_nowait()) is not None:
            self.take(event)


def source(kubeconfig: str, metrics: Metrics | None = None, timing: Timing = FAST) -> KubeSource:
    return KubeSource(connect(kubeconfig, False), NODE, metrics, timing)


def expected(api: FakeApiServer) -> dict[str, str]:
    """What the source should hold now: the server's objects that kube-proxy's selectors take,
    origin -> resourceVersion."""
    out = {}
    for resource in watched(NODE):
        selector = Selector.parse(resource.plural, resource.label_selector, resource.field_selector)
        for obj in api.objects(resource.plural):
            if selector.matches(obj):
                out[resource.origin(obj["metadata"])] = obj["metadata"]["resourceVersion"]
    return out


def in_step(api: FakeApiServer) -> Callable[[Mirror], bool]:
    return lambda m: m.synced and m.versions() == expected(api)


def run(test: Callable[[], Any]) -> None:
    asyncio.run(test())


def sequence(name: str) -> list[dict[str, Any]]:
    return read_sequence(SEQUENCES / f"{name}.jsonl")


# ---- the protocol -------------------------------------------------------------------------


def test_lists_then_watches_as_client_gos_reflector_with_kube_proxys_selectors(api, kubeconfig) -> None:
    events = sequence("selectors")
    api.apply(*events[:7])

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(lambda m: m.synced, "Synced")
        # Everything listed came before Synced; what kube-proxy skips never came.
        assert isinstance(mirror.events[-1], Synced)
        assert set(mirror.objects) == {"api:Service/shop/api", "api:ServiceCIDR/kubernetes", "api:Node/node-1"}
        api.apply(*events[7:])
        await mirror.until(in_step(api), "the rest of the sequence")
        await mirror.close()
        # The Service that took the service-proxy-name label left the watch (DELETED), and came
        # back when it lost it (ADDED).
        api_events = [type(e).__name__ for e in mirror.events if getattr(e, "origin", "") == "api:Service/shop/api"]
        assert api_events == ["Put", "Gone", "Put"]

    run(test)
    requests = [str(r) for r in api.requests()]
    lists = [r for r in requests if "watch=true" not in r]
    assert sorted(lists) == sorted([
        "GET /api/v1/services?fieldSelector=spec.clusterIP!=None&labelSelector=!service.kubernetes.io/service-proxy-name&limit=500&resourceVersion=0",
        "GET /apis/discovery.k8s.io/v1/endpointslices?labelSelector=!service.kubernetes.io/headless&limit=500&resourceVersion=0",
        "GET /apis/networking.k8s.io/v1/servicecidrs?limit=500&resourceVersion=0",
        "GET /api/v1/nodes?fieldSelector=metadata.name=node-1&limit=500&resourceVersion=0",
    ])
    watches = [r for r in api.requests() if r.verb == "watch"]
    assert len(watches) == 4
    for w in watches:
        assert w.query["allowWatchBookmarks"] == "true" and w.query["resourceVersion"] == "6007"
        assert 30 <= int(w.query["timeoutSeconds"]) <= 60


def test_object_text_is_the_object_on_one_line(api, kubeconfig) -> None:
    """List items come without kind and apiVersion: the source adds them; managedFields go."""
    events = sequence("rollout")
    api.apply(events[0])

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(lambda m: m.synced, "Synced")
        await mirror.close()
        put = next(e for e in mirror.events if isinstance(e, Put))
        obj = json.loads(put.text)
        assert obj["kind"] == "Service" and obj["apiVersion"] == "v1" and "managedFields" not in obj["metadata"]
        assert "\n" not in put.text and obj["spec"] == events[0]["object"]["spec"]

    run(test)
    assert object_text(watched(NODE)[0], {"metadata": {"name": "é", "managedFields": []}}) == '{"metadata":{"name":"é"},"kind":"Service","apiVersion":"v1"}'


def test_a_dropped_watch_resumes_from_the_last_resource_version_and_loses_nothing(api, kubeconfig) -> None:
    events = sequence("rollout")
    api.apply(*events[:2])

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(in_step(api), "the first objects")
        await _watching(api, 4)
        last = api.revision
        assert api.drop_watches() == 4
        api.apply(*events[2:5])  # while no watch is open
        await mirror.until(in_step(api), "the changes made while the watch was down")
        await _watching(api, 4)
        api.drop_watches()
        api.apply(*events[5:])
        await mirror.until(in_step(api), "the changes after a second drop")
        await mirror.close()
        return last

    last = asyncio.run(test())
    services = [r for r in api.requests() if r.path == "/api/v1/services"]
    assert [r.verb for r in services] == ["list", "watch", "watch", "watch"]  # resumed, never listed again
    assert services[2].query["resourceVersion"] == str(last)


def test_410_lists_again_and_objects_gone_meanwhile_are_gone(api, kubeconfig) -> None:
    """Deletions that happen while the watch is down and whose history is compacted away are
    found by the list that follows the 410: the relist replaces what was known."""
    events = sequence("rollout")
    api.apply(*events)

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(in_step(api), "the sequence")
        await _watching(api, 4)
        api.drop_watches()
        web, web_slice = api.objects("services")[0], api.objects("endpointslices")[0]
        api.apply({"type": "DELETED", "object": web_slice}, {"type": "DELETED", "object": web})
        api.apply(*sequence("selectors"))
        api.expire()
        await mirror.until(in_step(api), "the state after the 410")
        assert Gone("api:Service/shop/web") in mirror.events and Gone("api:EndpointSlice/shop/web-8xk2p") in mirror.events
        await mirror.close()

    run(test)
    services = [r for r in api.requests() if r.path == "/api/v1/services"]
    # list (0), watch, watch -> 410, list from the last resourceVersion seen (at least that new), watch
    assert [r.verb for r in services] == ["list", "watch", "watch", "list", "watch"]
    assert services[3].query["resourceVersion"] == services[2].query["resourceVersion"] and "limit" not in services[3].query


def test_410_on_an_open_watch(api, kubeconfig) -> None:
    events = sequence("rollout")
    api.apply(events[0])

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(in_step(api), "the first object")
        await _watching(api, 4)
        api.expire(notify=True)
        api.apply(*events[1:])
        await mirror.until(in_step(api), "the rest, after the 410")
        await mirror.close()

    run(test)
    assert [r.verb for r in api.requests() if r.path == "/api/v1/services"][:4] == ["list", "watch", "list", "watch"]


def test_a_bookmark_moves_the_resource_version_on(api, kubeconfig) -> None:
    """After a bookmark the watch resumes from the bookmark's resourceVersion: history compacted
    before it costs no relist."""
    api.apply(*sequence("rollout"))

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(in_step(api), "the sequence")
        await _watching(api, 4)
        api.apply(*sequence("selectors")[4:6])  # a ServiceCIDR and a Node: Services unchanged
        api.bookmark()
        await mirror.settle(0.2)
        api.drop_watches()
        api.expire()
        await mirror.until(in_step(api), "in step again")
        await asyncio.sleep(0.3)
        await mirror.close()

    run(test)
    services = [r for r in api.requests() if r.path == "/api/v1/services"]
    assert [r.verb for r in services] == ["list", "watch", "watch"]
    assert int(services[2].query["resourceVersion"]) == api.revision


def test_paged_lists_and_an_expired_continue_token(api, kubeconfig, monkeypatch) -> None:
    """Lists from resourceVersion "" page (limit 500): a relist after a 410 whose list from the
    last resourceVersion is 410 too goes to "" and follows the continue tokens."""
    services = [_service(f"s{i:04d}", f"10.96.{i // 250}.{i % 250 + 1}") for i in range(1100)]
    api.apply(*({"type": "ADDED", "object": s} for s in services))

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(in_step(api), "1100 Services")
        await mirror.close()

    run(test)
    lists = [r for r in api.requests() if r.path == "/api/v1/services" and r.verb == "list"]
    assert len(lists) == 1 and lists[0].query["resourceVersion"] == "0"  # the watch cache answers "0" whole
    # A list from "" is paged, and the pages read one revision.
    from svcctl.agent.kube import Reflector

    async def relist() -> None:
        client = connect(kubeconfig, False)
        found: list[Event] = []
        reflector = Reflector(client, watched(NODE)[0], found.append, lambda r: None, None, FAST)
        await reflector._list("")
        await client.aclose()
        assert len([e for e in found if isinstance(e, Put)]) == 1100

    run(relist)
    pages = [r for r in api.requests() if r.path == "/api/v1/services" and r.verb == "list"][1:]
    assert [r.query.get("limit") for r in pages] == ["500", "500", "500"] and "continue" in pages[1].query


def test_5xx_and_429_back_off_and_resume(api, kubeconfig) -> None:
    events = sequence("rollout")
    api.apply(events[0])
    metrics = Metrics()

    async def test() -> None:
        mirror = Mirror(source(kubeconfig, metrics))
        await mirror.until(in_step(api), "the first object")
        await _watching(api, 4)
        api.fail(503, 2, "services")
        api.fail(429, 1, "services")
        api.drop_watches()
        api.apply(*events[1:])
        await mirror.until(in_step(api), "the rest after the failures")
        await mirror.close()

    run(test)
    assert _counter(metrics, "services", "503") == 2 and _counter(metrics, "services", "429") == 1
    services = [r for r in api.requests() if r.path == "/api/v1/services"]
    assert [r.verb for r in services] == ["list", "watch", "watch", "watch", "watch", "watch"]


def test_403_is_one_log_line_a_metric_and_retried(api, kubeconfig, caplog) -> None:
    """RBAC without endpointslices: one error line naming the resource and the verb, the
    failures counted, no Synced (the agent changes no rules) until the rights come."""
    api.apply(*sequence("rollout"))
    api.deny("endpointslices", "list", "watch")
    metrics = Metrics()

    async def test() -> None:
        mirror = Mirror(source(kubeconfig, metrics))
        await mirror.settle(0.6)
        assert not mirror.synced
        assert _counter(metrics, "endpointslices", "403") >= 3
        api.allow("endpointslices", "list", "watch")
        await mirror.until(in_step(api), "Synced once allowed")
        api.deny("endpointslices", "watch")  # taken away again while running: what is known stays
        api.drop_watches()
        await mirror.settle(0.4)
        assert mirror.versions() == expected(api)
        await mirror.close()

    with caplog.at_level(logging.INFO, logger="svcctl.agent"):
        run(test)
    failed = [r for r in caplog.records if r.getMessage() == "Kubernetes API request refused"]
    assert [(r.fields["resource"], r.fields["verb"], r.fields["code"]) for r in failed] == [("endpointslices", "list", "403"), ("endpointslices", "watch", "403")]
    assert failed[0].levelname == "ERROR"
    assert 'endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:kube-system:svcctl" cannot list resource' in failed[0].fields["error"]
    assert "get, list and watch" in failed[0].fields["hint"]
    assert "endpointslices" in [r.fields["resource"] for r in caplog.records if r.getMessage() == "Kubernetes API requests succeed again"]


def test_401_without_the_right_token(api, certs, tmp_path) -> None:
    _never_synced(str(write_kubeconfig(tmp_path / "kc", api.url, certs.ca, token="wrong")), "401")


def test_a_token_file_is_read(api, certs, tmp_path) -> None:
    """Service-account tokens are files kubelet rotates: a kubeconfig's tokenFile."""
    (tmp_path / "token").write_text(TOKEN + "\n")
    kubeconfig = str(write_kubeconfig(tmp_path / "kc", api.url, certs.ca, token_file=tmp_path / "token"))

    async def test() -> None:
        mirror = Mirror(source(kubeconfig))
        await mirror.until(lambda m: m.synced, "Synced")
        await mirror.close()

    run(test)


def test_the_servers_certificate_must_be_of_the_ca(api, tmp_path, tmp_path_factory) -> None:
    other = make_certs(tmp_path_factory.mktemp("other"))
    _never_synced(str(write_kubeconfig(tmp_path / "kc", api.url, other.ca, token=TOKEN)), "connection")
    assert api.requests() == []


def test_resources_not_served_count_as_none(api, kubeconfig) -> None:
    """ServiceCIDRs before Kubernetes 1.33: a 404, taken as none, asked for again later."""
    api.not_served("servicecidrs")
    api.apply(sequence("rollout")[0])
    metrics = Metrics()

    async def test() -> None:
        mirror = Mirror(source(kubeconfig, metrics))
        await mirror.until(lambda m: m.synced, "Synced")
        await mirror.settle(0.3)
        await mirror.close()

    run(test)
    assert _counter(metrics, "servicecidrs", "404") >= 2


def test_services_not_served_are_never_taken_as_none(api, kubeconfig) -> None:
    """A 404 for Services (a wrong server address, a proxy in the way) must not sync an empty
    cluster: that would take every rule away."""
    api.not_served("services")
    _never_synced(kubeconfig, "404")


def test_bad_watch_events_are_a_protocol_error_and_resumed(api, kubeconfig) -> None:
    from svcctl.agent.kube import ProtocolError, Reflector

    reflector = Reflector(None, watched(NODE)[0], lambda e: None, lambda r: None)  # type: ignore[arg-type]
    for bad in ({"type": "ADDED"}, {"type": "SOMETHING", "object": {"metadata": {"resourceVersion": "1"}}}, {"type": "ADDED", "object": {"metadata": {}}}):
        with pytest.raises(ProtocolError):
            reflector._event(bad)
    with pytest.raises(ApiError) as raised:
        reflector._event({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 1 (5)"}})
    assert raised.value.expired


def test_config_errors(tmp_path) -> None:
    """A kubeconfig is read as --config is: problems at FILE or FILE:LINE:COLUMN, whole."""
    with pytest.raises(InvalidInput) as unread:
        connect("/nonexistent/kubeconfig", False)
    assert unread.value.lines() == ["/nonexistent/kubeconfig: cannot read kubeconfig: No such file or directory"]
    broken = tmp_path / "kubeconfig"
    broken.write_text("garbage: [\n")
    with pytest.raises(InvalidInput) as syntax:
        connect(str(broken), False)
    assert syntax.value.lines() == [f"{broken}:2:1: invalid YAML: while parsing a flow node did not find expected node content"]
    broken.write_text("- a list\n")
    with pytest.raises(ConfigError, match="a kubeconfig file must be a mapping"):
        connect(str(broken), False)
    with pytest.raises(ConfigError):
        connect(None, True)  # no service account here


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(0.8, 30.0)
    waits = [backoff.next() for _ in range(10)]
    for n, wait in enumerate(waits):
        ceiling = min(30.0, 0.8 * 2**n)
        assert ceiling / 2 <= wait <= ceiling
    backoff.reset()
    assert backoff.next() <= 0.8


# ---- through the agent's state: the rules a full compile would make ----------------------


def test_rules_after_faults_equal_a_compile_of_what_the_server_holds(api, kubeconfig) -> None:
    """The agent's state and plan, fed by the source through drops and 410s, give the rules a
    full compile of the server's objects (what ``kubectl get -o json`` would dump) gives; an
    object svcctl cannot use is reported at its origin and left out, the others are taken."""
    events = sequence("rollout") + sequence("selectors")
    api.apply(*events[:3])

    async def test() -> State:
        syncing = Syncing(OPTIONS, Syncer(OPTIONS, None))  # a syncer that only lays out
        mirror = Mirror(source(kubeconfig))
        await mirror.until(in_step(api), "the first objects")
        for i, event in enumerate(events[3:]):
            api.apply(event)
            if i % 3 == 0:
                api.drop_watches()
            if i % 4 == 1:
                api.expire()
        bad = _service("bad", "10.96.9.9")
        bad["spec"]["ports"][0].update(nodePort=31000)  # a node port on a ClusterIP Service: svcctl refuses it
        api.apply({"type": "ADDED", "object": bad})
        extra = {"kind": "ServiceCIDR", "apiVersion": "networking.k8s.io/v1", "metadata": {"name": "extra"}, "spec": {"cidrs": ["10.200.0.0/16"]}}
        api.apply({"type": "ADDED", "object": extra})
        await mirror.until(in_step(api), "the sequence, through drops and 410s")
        await mirror.close()
        # What a sync does before its commit; the events hold cluster objects: a full plan.
        syncing.state.apply(mirror.events)
        for (version, name), plan in syncing._reconfigure().items():
            syncing.syncer.update(version, name, plan)
        problems = [p.render() for p in syncing.state.problems()]
        assert len(problems) == 1 and problems[0].startswith("api:Service/shop/bad:"), problems
        rules = render_ruleset(syncing.syncer.ruleset())
        assert rules == _compile([o for r in watched(NODE) for o in _taken(api, r) if o["metadata"]["name"] != "bad"])
        assert "10.200.0.0/16" in rules  # a ServiceCIDR from the API: its unallocated addresses are dropped
        return syncing.state

    state = asyncio.run(test())
    assert {k.kind for k in state.objects} == {"Service", "EndpointSlice", "ServiceCIDR", "Node"}


# ---- helpers ------------------------------------------------------------------------------


async def _watching(api: FakeApiServer, count: int) -> None:
    """Wait until ``count`` watches are open on the server."""
    for _ in range(200):
        if api.open_watches() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{api.open_watches()} watches open, not {count}")


def _never_synced(kubeconfig: str, code: str) -> None:
    """A source that gets nowhere: no Synced, its failures counted under ``code``."""
    metrics = Metrics()

    async def test() -> None:
        mirror = Mirror(source(kubeconfig, metrics))
        await mirror.settle(0.3)
        assert not mirror.synced and _counter(metrics, "services", code) >= 1
        await mirror.close()

    run(test)


def _counter(metrics: Metrics, resource: str, code: str) -> float:
    return metrics.registry.get_sample_value("svcctl_api_errors_total", {"resource": resource, "code": code}) or 0.0


def _service(name: str, ip: str) -> dict[str, Any]:
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}], "selector": {"app": name},
                     "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
            "status": {"loadBalancer": {}}}


def _taken(api: FakeApiServer, resource: Any) -> list[dict[str, Any]]:
    selector = Selector.parse(resource.plural, resource.label_selector, resource.field_selector)
    return [o for o in api.objects(resource.plural) if selector.matches(o)]


def _compile(objects: list[dict[str, Any]]) -> str:
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    return compile_rules(Inputs([Source("dump.json", text, True)], []), OPTIONS)[2].text


# ---- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    ([], "give a source: a DIRECTORY, --kubeconfig FILE or --in-cluster"),
    (["--in-cluster", "--kubeconfig", "kc"], "give one source: a DIRECTORY, --kubeconfig FILE or --in-cluster (not --kubeconfig and --in-cluster)"),
    (["--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent/kubeconfig: cannot read kubeconfig: No such file or directory"),
])
def test_run_needs_one_source(run_cli, args: list[str], message: str) -> None:
    result = run_cli("run", *args)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_run_with_a_broken_kubeconfig_exits_2(run_cli, tmp_path) -> None:
    (tmp_path / "kc").write_text("clusters: [")
    result = run_cli("run", "--kubeconfig", str(tmp_path / "kc"))
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err


# ---- this node's Node: /healthz drains a node that is going away ---------------------------


@pytest.mark.parametrize("change, eligible", [
    ({}, True),
    ({"metadata": {"deletionTimestamp": "2025-06-03T10:00:00Z"}}, False),
    ({"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1749000000", "effect": "NoSchedule"}]}}, False),
    ({"spec": {"taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}}, True),
])
def test_a_node_going_away_is_not_eligible(change: dict[str, Any], eligible: bool) -> None:
    node = next(e["object"] for e in sequence("selectors") if e["object"]["kind"] == "Node")
    for part, fields in change.items():
        node.setdefault(part, {}).update(fields)
    syncing = Syncing(OPTIONS, Syncer(OPTIONS, None))
    assert syncing.node_eligible()  # no Node known: eligible
    other = {**node, "metadata": {**node["metadata"], "name": "node-2"}}
    syncing.state.apply([Put("api:Node/node-2", json.dumps(other), True)])
    assert syncing.node_eligible()  # another node's Node says nothing about this one
    syncing.state.apply([Put("api:Node/node-1", json.dumps(node), True)])
    assert syncing.node_eligible() is eligible


def test_healthz_says_503_for_a_node_going_away_and_livez_does_not() -> None:
    from svcctl.agent.health import ProxyHealth

    health = ProxyHealth(60.0, lambda: 1000.0)
    assert health.answer(node=True).status == 200
    health.node_eligible = False
    healthz, livez = health.answer(node=True), health.answer()
    assert healthz.status == 503 and json.loads(healthz.body)["nodeEligible"] is False and json.loads(healthz.body)["healthy"] is False
    assert livez.status == 200 and "nodeEligible" not in json.loads(livez.body)


def test_in_cluster_with_a_service_account(api, certs, tmp_path, monkeypatch) -> None:
    """--in-cluster: the server from KUBERNETES_SERVICE_HOST and _PORT (the DaemonSet sets them to
    the API server itself), the token, CA and namespace from the service account's directory."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN)
    (account / "ca.crt").write_bytes(certs.ca.read_bytes())
    (account / "namespace").write_text("kube-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
    api.apply(sequence("rollout")[0])

    async def test() -> None:
        mirror = Mirror(KubeSource(connect(None, True, service_account=str(account)), NODE, None, FAST))
        await mirror.until(in_step(api), "the Service")
        await mirror.close()

    run(test)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST is missing"):
        connect(None, True, service_account=str(account))


# ---- network programming latency -----------------------------------------------------------


def test_network_programming_latency_counts_from_the_slices_trigger_time() -> None:
    """kube-proxy's svcctl_network_programming_duration_seconds: from the EndpointSlice
    controller's last-change-trigger-time to the sync that succeeded; changes made before the
    agent started are not counted."""
    from svcctl.agent.reconcile import Kind, SyncReport, _triggered
    from svcctl.backends import ApplyResult

    slice_ = next(e["object"] for e in sequence("rollout") if e["object"]["kind"] == "EndpointSlice")
    state = State()
    state.apply([Put("api:EndpointSlice/shop/web-8xk2p", json.dumps(slice_), True)])
    (entry,) = state.objects.values()
    assert _triggered(entry) == 1748942062.0  # 2025-06-03T09:14:22Z
    slice_["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"] = "2025-06-03T09:14:22.5Z"
    state.apply([Put("api:EndpointSlice/shop/web-8xk2p", json.dumps(slice_), True)])
    assert _triggered(next(iter(state.objects.values()))) == 1748942062.5
    metrics = Metrics()
    ok = ApplyResult(True, "", "", (), ())
    metrics.synced(SyncReport(Kind.UPDATE, 0.01, 0.01, 1, 1, ok, triggered=(1748942062.5,)), 1748942064.0)
    metrics.synced(SyncReport(Kind.UPDATE, 0.01, 0.01, 1, 1, None, triggered=(1748942062.5,)), 1748942064.0)  # failed: not counted
    sample = metrics.registry.get_sample_value
    assert sample("svcctl_network_programming_duration_seconds_count") == 1
    assert sample("svcctl_network_programming_duration_seconds_bucket", {"le": "2.0"}) == 1
    assert sample("svcctl_network_programming_duration_seconds_bucket", {"le": "1.0"}) == 0
