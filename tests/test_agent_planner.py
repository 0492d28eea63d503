"""The agent's incremental path (state -> planner -> syncer) gives the bytes of a full compile of
the same accepted objects after any sequence of changes, and its update commits leave the kernel
holding exactly that."""

from __future__ import annotations

import json
import os
import random

import pytest

from svcctl.agent.planner import Planner
from svcctl.agent.source import Gone, Put
from svcctl.agent.state import State
from svcctl.allocate import allocate_all
from svcctl.backends import backend
from svcctl.kernel import in_throwaway_netns
from svcctl.nftables.decide import transaction
from svcctl.nftables.live import read_live
from svcctl.nftables.nft import Nft
from svcctl.nftables.render import frame_name
from svcctl.nftables.render import render_ruleset
from svcctl.nftables.syncer import Syncer
from svcctl.options import build_options
from svcctl.plan import plan
from svcctl.resolve import resolve
from svcctl.validate import Inventory

OPTIONS = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16", "fd00:244::/48"]})


def service(i: int, rng: random.Random) -> dict:
    kind = rng.choice(["ClusterIP", "NodePort", "LoadBalancer"])
    spec: dict = {"type": kind, "selector": {"app": f"a{i % 3}"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if rng.random() < 0.7:
        spec["clusterIP"] = f"10.96.0.{10 + i}"  # else allocated
    if kind != "ClusterIP":
        if rng.random() < 0.5:
            spec["ports"][0]["nodePort"] = 30000 + rng.randrange(4)  # conflicts on purpose
        spec["externalTrafficPolicy"] = rng.choice(["Cluster", "Local"])
    if rng.random() < 0.3:
        spec["externalIPs"] = [f"203.0.113.{rng.randrange(3)}"]  # contested
    if rng.random() < 0.2:
        spec["sessionAffinity"] = "ClientIP"
    if rng.random() < 0.2:
        spec["ports"].append({"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53})
    if rng.random() < 0.4:  # hints for its endpoints from Pods, from the Nodes' zones
        spec["trafficDistribution"] = rng.choice(["PreferClose", "PreferSameZone", "PreferSameNode"])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"}, "spec": spec}


def node(i: int, rng: random.Random) -> dict:
    """A Node (node-1 is this one): its zone decides which hinted endpoints get traffic."""
    labels = {"topology.kubernetes.io/zone": rng.choice(["zone-a", "zone-b"])} if rng.random() < 0.8 else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{1 + i % 3}", "labels": labels}}


def endpoint_slice(i: int, rng: random.Random) -> dict:
    endpoints = [
        {
            "addresses": [f"10.244.{rng.randrange(2)}.{rng.randrange(1, 6)}"],
            "nodeName": rng.choice(["node-1", "node-2"]),
            "conditions": {"ready": rng.random() < 0.8, "serving": True, "terminating": rng.random() < 0.2},
            **({"hints": {"forZones": [{"name": rng.choice(["zone-a", "zone-b"])}]}} if rng.random() < 0.6 else {}),
        }
        for _ in range(rng.randrange(4))
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"s{rng.randrange(8)}-x", "labels": {"kubernetes.io/service-name": f"s{rng.randrange(8)}"}},
        "addressType": "IPv4", "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}],
    }


def pod(i: int, rng: random.Random) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p{i}", "labels": {"app": f"a{rng.randrange(3)}"}},
        "spec": {"nodeName": rng.choice(["node-1", "node-2"]), "containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIP": f"10.244.1.{i + 1}", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def full(state: State, name: str = "nftables", options=OPTIONS) -> str:  # type: ignore[no-untyped-def]
    """A full compile of the objects the state accepted (less those allocation fails for), with
    back end ``name``."""
    inventory = Inventory()
    lists = {"Service": inventory.services, "Endpoints": inventory.endpoints, "EndpointSlice": inventory.slices, "Pod": inventory.pods, "Node": inventory.nodes}
    for key, entry in sorted(state.objects.items()):
        lists[key.kind].append(entry)
    _, problems = allocate_all(inventory.services, OPTIONS)
    inventory.services = [e for e in inventory.services if e.obj.ref not in {p.ref for p in problems}]
    return backend(name).compile(plan(resolve(inventory, options), options), options).text


def random_events(rng: random.Random) -> list[Put | Gone]:
    """One to three files written (a Service, a slice, a Pod or a Node) or removed."""
    events: list[Put | Gone] = []
    for _ in range(rng.randrange(1, 4)):
        origin = f"f{rng.randrange(10)}.json"
        if rng.random() < 0.15:
            events.append(Gone(origin))
        else:
            maker = rng.choice([service, endpoint_slice, pod, node])
            events.append(Put(origin, json.dumps(maker(rng.randrange(8), rng)), True))
    return events


@pytest.mark.parametrize("seed", range(12))
def test_incremental_equals_full_compile(seed: int) -> None:
    rng = random.Random(seed)
    state, planner, syncer = State(), Planner(OPTIONS), Syncer(OPTIONS, None)
    conflicts = 0
    for step in range(40):
        changes = state.apply(random_events(rng))
        for (version, name), ports in planner.update(state, changes).items():
            syncer.update(version, name, ports)
        assert render_ruleset(syncer.ruleset()) == full(state), f"step {step}"
        ruleset = syncer.ruleset()
        assert syncer.counts()["chains"] == sum(len(t.endpoint_chains) + len(t.external_chains) for t in ruleset.tables)
        assert planner.totals()["endpoints"] == sum(len(p.backends) for s in planner.resolved.values() for p in s.ports)
        conflicts += len(state.problems())
    assert conflicts  # the random input had conflicts (duplicates, held values)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a throwaway network namespace")


@needs_root
@pytest.mark.parametrize("seed", range(3))
def test_update_commits_leave_the_kernel_holding_the_plan(seed: int) -> None:
    """In a throwaway namespace: after each commit of the changes alone (decided from memory),
    reading the kernel finds nothing to change, as a full apply would leave it."""

    def work() -> list[str]:
        rng = random.Random(seed)
        state, planner, syncer = State(), Planner(OPTIONS), Syncer(OPTIONS, Nft())
        failures = []
        for step in range(25):
            events = [Put(f"f{rng.randrange(10)}.json", json.dumps(rng.choice([service, endpoint_slice, pod])(rng.randrange(8), rng)), True)]
            if rng.random() < 0.15:
                events = [Gone(f"f{rng.randrange(10)}.json")]
            for (version, name), ports in planner.update(state, state.apply(events)).items():
                syncer.update(version, name, ports)
            syncer.commit(verify=step == 0)  # the first one creates the tables, the rest are updates
            ruleset = syncer.ruleset()
            frames = {t.scope: frame_name(t) for t in ruleset.tables}
            tx = transaction(ruleset, read_live(Nft(), ruleset, frames), frames)
            if tx.kind != "unchanged":
                failures.append(f"step {step}: {tx.summary}")
            if not syncer._matches_kernel():
                failures.append(f"step {step}: the resync check sees a difference")
        return failures

    assert in_throwaway_netns(work) == []


@needs_root
def test_reload_restores_rules_edited_inside_chains() -> None:
    """The hourly reload rewrites the rules whole: it repairs a chain flushed by hand, which the
    resync (chain and set names, elements) cannot see."""

    def work() -> tuple[str, str, str]:
        state, planner, syncer = State(), Planner(OPTIONS), Syncer(OPTIONS, Nft())
        rng = random.Random(7)
        svc = service(1, rng)
        svc["spec"]["clusterIP"], svc["spec"]["type"] = "10.96.0.11", "ClusterIP"
        svc["spec"].pop("externalIPs", None)
        svc["spec"].pop("externalTrafficPolicy", None)
        svc["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080}]
        objects = [svc, pod(1, rng) | {"metadata": {"name": "p1", "labels": {"app": "a1"}}}]
        for (version, name), plan_ in planner.update(state, state.apply([Put("f.json", json.dumps({"kind": "List", "apiVersion": "v1", "items": objects}), True)])).items():
            syncer.update(version, name, plan_)
        syncer.commit(verify=True)
        chain = syncer.ruleset().tables[0].endpoint_chains[0].name
        nft = Nft()
        nft.run(f"flush chain ip svcctl {chain}\n")
        flushed = nft.listing(f"list chain ip svcctl {chain}")
        verified = syncer.commit(verify=True).summary
        syncer.commit(reload=True)
        return flushed, verified, nft.listing(f"list chain ip svcctl {chain}")

    flushed, verified, after = in_throwaway_netns(work)
    assert "dnat" not in flushed and verified == "no changes" and "dnat to 10.244.1.2:8080" in after


def _topology_objects(zone_1: str, zone_2: str) -> dict[str, dict]:
    """Origins: this node and another, a Service with hinted EndpointSlices, one whose endpoints
    svcctl hints from its Pods (PreferSameZone), and one whose endpoints nothing hints."""
    zoned = {"apiVersion": "v1", "kind": "Node"}

    def svc(name: str, ip: str, selector: str | None, distribution: str | None = None) -> dict:
        spec: dict = {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        if selector:
            spec["selector"] = {"app": selector}
        if distribution:
            spec["trafficDistribution"] = distribution
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}

    def pods(app: str, subnet: int) -> list[dict]:
        return [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{app}-{n}", "labels": {"app": app}},
             "spec": {"nodeName": f"node-{n}", "containers": [{"name": "c"}]},
             "status": {"phase": "Running", "podIP": f"10.244.{n}.{subnet}", "conditions": [{"type": "Ready", "status": "True"}]}}
            for n in (1, 2)
        ]

    hinted = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "sliced-x", "labels": {"kubernetes.io/service-name": "sliced"}}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [f"10.244.9.{n}"], "hints": {"forZones": [{"name": z}]}} for n, z in ((1, "zone-a"), (2, "zone-b"))],
    }
    items = {
        "node-1.json": [zoned | {"metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": zone_1}}}],
        "node-2.json": [zoned | {"metadata": {"name": "node-2", "labels": {"topology.kubernetes.io/zone": zone_2}}}],
        "sliced.json": [svc("sliced", "10.96.1.1", None), hinted],
        "near.json": [svc("nearby", "10.96.1.2", "near", "PreferSameZone"), *pods("near", 2)],
        "plain.json": [svc("plainly", "10.96.1.3", "plain"), *pods("plain", 3)],
    }
    return {origin: {"apiVersion": "v1", "kind": "List", "items": objects} for origin, objects in items.items()}


@pytest.mark.parametrize("node_zone", ["", "zone-a"])
def test_a_node_zone_change_reaches_every_service_whose_endpoints_depend_on_it(node_zone: str) -> None:
    options = build_options({"node-name": "node-1", "node-zone": node_zone or None, "cluster-cidr": ["10.244.0.0/16"]})
    state, planner, syncer = State(), Planner(options), Syncer(options, None)

    def step(zone_1: str, zone_2: str, only: tuple[str, ...] = ()) -> set[str]:
        texts = _topology_objects(zone_1, zone_2)
        changes = state.apply([Put(o, json.dumps(t), True) for o, t in texts.items() if not only or o in only])
        changed = planner.update(state, changes)
        for (version, name), ports in changed.items():
            syncer.update(version, name, ports)
        inventory = Inventory()
        lists = {"Service": inventory.services, "EndpointSlice": inventory.slices, "Pod": inventory.pods, "Node": inventory.nodes}
        for key, entry in sorted(state.objects.items()):
            lists[key.kind].append(entry)
        assert render_ruleset(syncer.ruleset()) == backend("nftables").compile(plan(resolve(inventory, options), options), options).text
        return {name for _, (_, name) in changed}

    assert step("zone-a", "zone-b") == {"sliced", "nearby", "plainly"}
    # This node moves to zone-b: the hinted slices' Service follows it (unless --node-zone says
    # where the node is), and so does the one hinted from its Pods' Nodes.
    assert step("zone-b", "zone-b", only=("node-1.json",)) == ({"sliced", "nearby"} if not node_zone else {"nearby"})
    # Another node moves: only the endpoints on it change their hints.
    assert step("zone-b", "zone-a", only=("node-2.json",)) == {"nearby"}
    # A Node without a zone: its Pod's endpoint has no hint, so no hint is used for "nearby".
    assert step("zone-b", "", only=("node-2.json",)) == {"nearby"}


def test_cluster_objects_change_the_node_settings_of_a_running_agent() -> None:
    """A ServiceCIDR or this node's Node arriving, changing or going re-plans with the settings
    they give (svcctl.cluster), to the same rules as a full compile of the same objects."""
    from svcctl.agent.reconcile import Kind, Syncing
    from svcctl.backends import ApplyResult
    from svcctl.load import Inputs, Source
    from svcctl.pipeline import compile_rules

    class Laidout(Syncer):  # lays out, never commits: the kernel side is tested elsewhere
        def commit(self, verify: bool = False, reload: bool = False) -> ApplyResult:
            return ApplyResult(False, "", "", (), ())

    lb = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.100.0.7", "loadBalancerSourceRanges": ["192.168.0.0/24"],
                 "ports": [{"port": 80, "nodePort": 30080}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}},
    }
    cidr = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "extra"}, "spec": {"cidrs": ["10.100.0.0/16"]}}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": OPTIONS.node_name},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.2"}]}}
    syncing = Syncing(OPTIONS, Laidout(OPTIONS, None))
    files: dict[str, dict] = {}

    def step(name: str, obj: dict | None) -> None:
        if obj is None:
            files.pop(name)
            syncing.sync([Gone(name)], Kind.UPDATE)
        else:
            files[name] = obj
            syncing.sync([Put(name, json.dumps(obj), True)], Kind.UPDATE)
        whole = Inputs([Source(n, json.dumps(o), True) for n, o in sorted(files.items())])
        assert render_ruleset(syncing.syncer.ruleset()) == compile_rules(whole, OPTIONS)[2].text, name

    step("lb.json", lb)
    step("cidr.json", cidr)  # 10.100.0.0/16 joins the service CIDRs
    step("node.json", node)  # the node is in the source ranges: the LB IP joins them
    assert "198.51.100.7 . tcp . 80 . 198.51.100.7" in render_ruleset(syncing.syncer.ruleset())
    step("cidr.json", None)
    step("node.json", None)


def test_the_agent_takes_a_zone_change_incrementally() -> None:
    """A Node's zone is no node setting (svcctl.cluster): the agent keeps its planner, which
    re-plans the Services the change reaches, to the rules of a full compile."""
    from svcctl.agent.reconcile import Kind, Syncing
    from svcctl.backends import ApplyResult
    from svcctl.load import Inputs, Source
    from svcctl.pipeline import compile_rules

    class Laidout(Syncer):
        def commit(self, verify: bool = False, reload: bool = False) -> ApplyResult:
            return ApplyResult(False, "", "", (), ())

    syncing = Syncing(OPTIONS, Laidout(OPTIONS, None))
    texts = {o: json.dumps(t) for o, t in _topology_objects("zone-a", "zone-b").items()}
    syncing.sync([Put(o, t, True) for o, t in texts.items()], Kind.UPDATE)
    planner = syncing.planner
    texts["node-1.json"] = json.dumps(_topology_objects("zone-b", "zone-b")["node-1.json"])
    syncing.sync([Put("node-1.json", texts["node-1.json"], True)], Kind.UPDATE)
    assert syncing.planner is planner
    whole = Inputs([Source(o, t, True) for o, t in sorted(texts.items())])
    ruleset = render_ruleset(syncing.syncer.ruleset())
    assert ruleset == compile_rules(whole, OPTIONS)[2].text
    assert "dnat to 10.244.9.2:8080" in ruleset and "dnat to 10.244.9.1:8080" not in ruleset  # the slices' zone-b endpoint
