"""svcctl end to end: real manifests, ``svcctl apply`` in the lab's node namespace, real traffic.

Every test runs once per back end (scenarios.backend_fixture: nftables, iptables-nft, iptables-legacy).
Needs root, iproute2, nft, /usr/bin/python3 and the nftables Python binding svcctl uses, and
iptables 1.8 for the iptables back end; skipped otherwise. One lab per back end is shared by the
module (pods pod-a..pod-d on the node's pod bridge, clients ``client`` and ``client2`` on the
node's external network); every test starts and ends with no svcctl tables or chains
(``svcctl delete``).

The manifests say that pod-a, pod-b and pod-c run on this node (node-1). pod-d is on the same
bridge, but where a test says it runs on node-2 it plays a remote endpoint: reachable, yet not
local, so externalTrafficPolicy Local is observable.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from lab import NODE_IP4, NODE_IP6, POD_GATEWAY4, POD_GATEWAY6, Lab, pods_seen
from scenarios import (CHI2_P001, NODE, OTHER_NODE, SVCCTL, Svcctl, backend_fixture, chi_square, endpoint_slice,  # noqa: F401 (fixture)
                       endpoints, manifest, pod, port, service, slice_endpoint)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft")),
                       reason="needs iproute2 (ip) and nft"),
    pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="needs /usr/bin/python3"),
    pytest.mark.skipif(not os.access(SVCCTL, os.X_OK), reason=f"svcctl not installed at {SVCCTL}"),
]

PODS = ("pod-a", "pod-b", "pod-c", "pod-d")
CLIENTS = ("client", "client2")
LB_IP = "203.0.113.10"      # TEST-NET-3: routed to the node by the clients' default route
EXTERNAL_IP = "203.0.113.20"
FAST = 0.5                  # timeout where a drop is the expected outcome


@pytest.fixture(scope="module")
def lab(backend):
    """A lab per back end: each starts with an empty conntrack table and no other back end's
    tables in its node namespace."""
    with Lab(pods=PODS, clients=CLIENTS, tcp_ports=(8080, 9090), udp_ports=(8080, 9090)) as lab:
        probe = Svcctl(lab, "/nonexistent", backend).delete()
        if probe.returncode == 3:   # no nftables binding or iptables, privileges or kernel support
            pytest.skip(f"svcctl cannot reach {backend}: {probe.stderr.strip()}")
        assert probe.returncode == 0, probe.stderr
        yield lab


def _reset(lab, helper):
    """No svcctl tables or chains, no test tables: every test starts from scratch.
    (Conntrack is not flushed: its TIME_WAIT entries are what keeps masquerading from picking a
    source port that a pod still holds in TIME_WAIT, which would cost a 1 s SYN retransmit.)"""
    assert helper.delete().returncode == 0
    for table in ("inet other", "ip other"):
        lab.node_exec(["nft", "delete", "table", *table.split()], check=False)


@pytest.fixture
def svc(lab, tmp_path, backend):
    helper = Svcctl(lab, tmp_path, backend)
    if helper.owned():   # left over by a teardown that failed
        _reset(lab, helper)
    yield helper
    _reset(lab, helper)


@pytest.fixture
def hosts(lab):
    """pod-a, pod-b, pod-c, pod-d as lab Hosts (name, ip4, ip6)."""
    return tuple(lab.pods[name] for name in PODS)


def all_ok(results):
    """The errors of the failed requests (empty when every request was answered)."""
    return [(i, r.error) for i, r in enumerate(results) if not r.ok]


def web_pods(hosts, labels=None, node=NODE, **kwargs):
    labels = labels or {"app": "web"}
    return [pod(h, labels, node=node, **kwargs) for h in hosts]


# --- load balancing ------------------------------------------------------------------------------


def test_endpoints_are_chosen_with_equal_probability(lab, svc, hosts):
    a, b, c, _ = hosts
    svc.apply([service("spread", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.10"),
               *web_pods([a, b, c])])
    results = lab.requests("client", "10.96.0.10", 80, 600, timeout=1.0)
    assert all_ok(results) == []
    seen = pods_seen(results)
    assert set(seen) == {"pod-a", "pod-b", "pod-c"}, seen
    # Uniform over 3 endpoints, df = 2: a sound cascade fails this once in a thousand runs; a
    # skewed one (e.g. every rule "mod 3": 1/3, 2/9, 4/9) scores around 45.
    assert chi_square(seen, ["pod-a", "pod-b", "pod-c"]) < CHI2_P001[2], seen


def test_named_target_port_is_resolved_per_pod(lab, svc, hosts):
    a, b, c, _ = hosts
    svc.apply([
        service("named", [port(80, "web", name="http")], selector={"app": "web"}, cluster_ip="10.96.0.11"),
        pod(a, {"app": "web"}, container_ports=[("web", 8080)]),
        pod(b, {"app": "web"}, container_ports=[("web", 9090)]),
        pod(c, {"app": "web"}, container_ports=[("metrics", 8080)]),  # no port "web": no endpoint
    ])
    results = lab.requests("client", "10.96.0.11", 80, 60, timeout=1.0)
    assert all_ok(results) == []
    assert {(r.reply["pod"], r.reply["port"]) for r in results} == {("pod-a", 8080), ("pod-b", 9090)}


def test_udp(lab, svc, hosts):
    a, b, c, _ = hosts
    svc.apply([service("dns", [port(53, 9090, protocol="UDP", name="dns")], selector={"app": "dns"},
                       cluster_ip="10.96.0.53"),
               *web_pods([a, b], labels={"app": "dns"})])
    results = lab.requests("client", "10.96.0.53", 53, 60, proto="udp", timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-a", "pod-b"}
    assert {r.reply["port"] for r in results} == {9090}
    # From a pod (inside the cluster CIDR) the source is kept.
    from_pod = lab.requests("pod-c", "10.96.0.53", 53, 20, proto="udp", timeout=1.0)
    assert all_ok(from_pod) == []
    assert {r.reply["peer"] for r in from_pod} == {c.ip4}
    # The TCP port of the same number is not a service port: refused at once (as kube-proxy).
    assert lab.requests("client", "10.96.0.53", 53, 1, timeout=FAST)[0].error == "refused"


# --- NodePort, LoadBalancer, externalIPs ----------------------------------------------------------


@pytest.mark.parametrize("node_ip, gateway", [(NODE_IP4, POD_GATEWAY4), (NODE_IP6, POD_GATEWAY6)])
def test_nodeport_cluster_policy_is_masqueraded(lab, svc, hosts, node_ip, gateway):
    a, _, _, d = hosts
    svc.apply([
        service("np-cluster", [port(80, node_port=30080)], selector={"app": "web"}, type="NodePort",
                dual_stack=("10.96.0.20", "fd00:10:96::20"), externalTrafficPolicy="Cluster"),
        pod(a, {"app": "web"}), pod(d, {"app": "web"}, node=OTHER_NODE),
    ])
    results = lab.requests("client", node_ip, 30080, 60, timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-a", "pod-d"}
    assert {r.reply["peer"] for r in results} == {gateway}  # the node's address, not the client's


def test_nodeport_local_policy_keeps_source_and_uses_local_endpoints_only(lab, svc, hosts):
    a, _, c, d = hosts
    svc.apply([
        service("np-local", [port(80, node_port=30081)], selector={"app": "web"}, type="NodePort",
                cluster_ip="10.96.0.21", externalTrafficPolicy="Local"),
        pod(a, {"app": "web"}), pod(d, {"app": "web", "role": "remote"}, node=OTHER_NODE),
        # Only a remote endpoint: external clients are dropped, pods still served.
        service("np-remote", [port(80, node_port=30082)], selector={"role": "remote"}, type="NodePort",
                cluster_ip="10.96.0.22", externalTrafficPolicy="Local"),
    ])
    client = lab.clients["client"]
    results = lab.requests("client", NODE_IP4, 30081, 60, timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-a"}
    assert {r.reply["peer"] for r in results} == {client.ip4}
    # The ClusterIP is not subject to the external policy: both endpoints.
    cluster = lab.requests("client", "10.96.0.21", 80, 60, timeout=1.0)
    assert all_ok(cluster) == [] and set(pods_seen(cluster)) == {"pod-a", "pod-d"}
    # Pods reach every endpoint through the NodePort too, with their own address.
    from_pod = lab.requests("pod-c", NODE_IP4, 30081, 40, timeout=1.0)
    assert all_ok(from_pod) == [] and set(pods_seen(from_pod)) == {"pod-a", "pod-d"}
    assert {r.reply["peer"] for r in from_pod} == {c.ip4}
    # No local endpoint: dropped for the external client (not refused), served for a pod.
    assert [r.error for r in lab.requests("client", NODE_IP4, 30082, 2, timeout=FAST)] == ["timeout"] * 2
    remote = lab.requests("pod-c", NODE_IP4, 30082, 5, timeout=1.0)
    assert all_ok(remote) == [] and set(pods_seen(remote)) == {"pod-d"}


def test_loadbalancer_source_ranges(lab, svc, hosts):
    a, b, _, _ = hosts
    allowed = lab.clients["client"]   # client2 (another address of the same subnet) is not
    svc.apply([
        service("lb", [port(80, node_port=30090)], selector={"app": "web"}, type="LoadBalancer",
                cluster_ip="10.96.0.30", loadBalancerSourceRanges=[f"{allowed.ip4}/32"],
                status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}}),
        *web_pods([a, b]),
    ])
    results = lab.requests("client", LB_IP, 80, 30, timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-a", "pod-b"}
    dropped = lab.requests("client2", LB_IP, 80, 3, timeout=FAST)
    assert [r.error for r in dropped] == ["timeout"] * 3
    # The ranges guard the LB IP only: the denied client still reaches the ClusterIP and NodePort.
    assert all_ok(lab.requests("client2", "10.96.0.30", 80, 5, timeout=1.0)) == []
    assert all_ok(lab.requests("client2", NODE_IP4, 30090, 5, timeout=1.0)) == []


def test_external_ips(lab, svc, hosts):
    a, b, _, _ = hosts
    svc.apply([service("ext", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.40",
                       externalIPs=[EXTERNAL_IP]),
               *web_pods([a, b])])
    for client in ("client", "client2"):
        results = lab.requests(client, EXTERNAL_IP, 80, 30, timeout=1.0)
        assert all_ok(results) == []
        assert set(pods_seen(results)) == {"pod-a", "pod-b"}
        assert {r.reply["peer"] for r in results} == {POD_GATEWAY4}  # policy Cluster: masqueraded
    # Another port of the external IP is not the service's.
    assert lab.requests("client", EXTERNAL_IP, 81, 1, timeout=FAST)[0].ok is False


# --- session affinity -----------------------------------------------------------------------------


def test_session_affinity_survives_reapply(lab, svc, hosts):
    a, b, c, _ = hosts
    sticky = [service("sticky", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.50",
                      sessionAffinity="ClientIP",
                      sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
              *web_pods([a, b, c])]
    svc.apply(sticky)

    def pinned(client, n):
        results = lab.requests(client, "10.96.0.50", 80, n, timeout=1.0)
        assert all_ok(results) == []
        seen = pods_seen(results)
        assert len(seen) == 1, f"{client} was spread over {dict(seen)}"
        return next(iter(seen))

    first = {client: pinned(client, 30) for client in CLIENTS}
    # The same manifest again: nothing lost (and nothing to do).
    again = svc.apply(sticky)
    assert {client: pinned(client, 15) for client in CLIENTS} == first
    assert again.stdout.startswith("unchanged"), again.stdout
    # A slightly different manifest (an unrelated Service more): an update that keeps the pins.
    changed = svc.apply([*sticky, service("unrelated", [port(80)], selector={"app": "none"},
                                          cluster_ip="10.96.0.51")])
    assert {client: pinned(client, 15) for client in CLIENTS} == first
    assert changed.stdout.startswith("applied:"), changed.stdout
    # And back again.
    svc.apply(sticky)
    assert {client: pinned(client, 15) for client in CLIENTS} == first


# --- where endpoints come from --------------------------------------------------------------------


@pytest.mark.parametrize("proto, src, vip", [
    ("tcp", "client", "10.96.0.60"), ("tcp", "pod-a", "10.96.0.60"), ("tcp", "node", "10.96.0.60"),
    ("udp", "client", "10.96.0.60"), ("udp", "pod-a", "10.96.0.60"),
    ("tcp", "client", "fd00:10:96::60"), ("udp", "client", "fd00:10:96::60"),
])
def test_service_without_endpoints_is_refused_at_once(lab, svc, hosts, proto, src, vip):
    a, b, _, _ = hosts
    svc.apply([service("empty", [port(80, protocol=proto.upper())], selector={"app": "nothing"},
                       dual_stack=("10.96.0.60", "fd00:10:96::60")),
               *web_pods([a, b])])
    results = lab.requests(src, vip, 80, 5, proto=proto, timeout=3.0)
    assert [r.error for r in results] == ["refused"] * 5
    assert max(r.seconds for r in results) < 0.5, [round(r.seconds, 3) for r in results]


def test_selectorless_service_with_endpoints_object(lab, svc, hosts):
    a, b, c, _ = hosts
    svc.apply([
        # targetPort plays no part without a selector: the Endpoints' port counts.
        service("manual", [port(80, 1234)], cluster_ip="10.96.0.70"),
        endpoints("manual", ready=[(b.ip4, NODE), (c.ip4, NODE)], not_ready=[(a.ip4, NODE)],
                  ports=[{"port": 9090, "protocol": "TCP"}]),
    ])
    results = lab.requests("client", "10.96.0.70", 80, 60, timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-b", "pod-c"}
    assert {r.reply["port"] for r in results} == {9090}


def test_terminating_endpoint_serves_when_none_is_ready(lab, svc, hosts):
    a, b, c, _ = hosts
    draining = [
        slice_endpoint(a.ip4, ready=False, serving=True, terminating=True),
        slice_endpoint(b.ip4, ready=False, serving=False, terminating=True),
    ]
    ports = [{"name": "", "port": 8080, "protocol": "TCP"}]
    term = service("term", [port(80)], cluster_ip="10.96.0.80")
    svc.apply([term, endpoint_slice("term", "term-1", draining, ports)])
    results = lab.requests("client", "10.96.0.80", 80, 30, timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-a"}
    # As soon as one endpoint is ready, the terminating one gets nothing.
    ready = slice_endpoint(c.ip4, ready=True, serving=True, terminating=False)
    svc.apply([term, endpoint_slice("term", "term-1", [*draining, ready], ports)])
    results = lab.requests("client", "10.96.0.80", 80, 30, timeout=1.0)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-c"}


# --- families and sources -------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_ipv6_cluster_ip_of_a_dual_stack_service(lab, svc, hosts, proto):
    a, b, c, _ = hosts
    svc.apply([service("dual", [port(80, protocol=proto.upper())], selector={"app": "web"},
                       dual_stack=("10.96.0.90", "fd00:10:96::90")),
               *web_pods([a, b])])
    results = lab.requests("client", "fd00:10:96::90", 80, 40, proto=proto, timeout=1.5)
    assert all_ok(results) == []
    assert set(pods_seen(results)) == {"pod-a", "pod-b"}
    from_pod = lab.requests("pod-c", "fd00:10:96::90", 80, 20, proto=proto, timeout=1.5)
    assert all_ok(from_pod) == []
    assert {r.reply["peer"] for r in from_pod} == {c.ip6}   # inside the cluster CIDR: kept
    # The IPv4 cluster IP of the same Service works as well.
    assert all_ok(lab.requests("client", "10.96.0.90", 80, 10, proto=proto, timeout=1.0)) == []


@pytest.mark.parametrize("family", ["ip4", "ip6"])
def test_pod_reaches_itself_through_its_service(lab, svc, hosts, family):
    a, b, _, _ = hosts
    svc.apply([service("self", [port(80)], selector={"app": "self"},
                       dual_stack=("10.96.0.100", "fd00:10:96::100")),
               pod(a, {"app": "self"}), pod(b, {"app": "web"})])
    vip = "10.96.0.100" if family == "ip4" else "fd00:10:96::100"
    gateway = POD_GATEWAY4 if family == "ip4" else POD_GATEWAY6
    results = lab.requests("pod-a", vip, 80, 10, timeout=1.5)
    assert all_ok(results) == []
    assert {(r.reply["pod"], r.reply["peer"]) for r in results} == {("pod-a", gateway)}


def test_traffic_from_the_node_itself(lab, svc, hosts):
    a, b, c, _ = hosts
    svc.apply([service("from-node", [port(80)], selector={"app": "web"},
                       dual_stack=("10.96.0.110", "fd00:10:96::110")),
               *web_pods([a, b, c])])
    for vip, peer in (("10.96.0.110", POD_GATEWAY4), ("fd00:10:96::110", POD_GATEWAY6)):
        results = lab.requests("node", vip, 80, 60, timeout=1.0)
        assert all_ok(results) == []
        assert set(pods_seen(results)) == {"pod-a", "pod-b", "pod-c"}
        assert {r.reply["peer"] for r in results} == {peer}


# --- the command line against the kernel ----------------------------------------------------------


def _one_pod_service(hosts, which, name="cmd", vip="10.96.0.120"):
    return [service(name, [port(80)], selector={"app": "web"}, cluster_ip=vip),
            pod(hosts[which], {"app": "web"})]


def test_diff_is_empty_after_apply_and_not_after_a_change(lab, svc, hosts):
    first = _one_pod_service(hosts, 0)
    svc.apply(first)
    same = svc.diff(first)
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")
    before = svc.ruleset()
    changed = svc.diff(_one_pod_service(hosts, 1))
    assert changed.returncode == 1, changed.stderr
    assert "10.244.1.2" in changed.stdout and "10.244.1.3" in changed.stdout, changed.stdout
    # diff changes nothing.
    assert svc.ruleset() == before
    assert set(pods_seen(lab.requests("client", "10.96.0.120", 80, 10, timeout=1.0))) == {"pod-a"}


def test_dry_run_changes_nothing(lab, svc, hosts):
    # Onto an empty kernel: no table (chain) appears.
    before = svc.ruleset()
    empty = svc.dry_run(_one_pod_service(hosts, 0))
    assert empty.returncode == 0, empty.stderr
    assert "+" in empty.stdout
    assert svc.owned() == set() and svc.ruleset() == before
    # Onto live tables: the listing stays byte for byte, traffic keeps its old way.
    svc.apply(_one_pod_service(hosts, 0))
    before = svc.ruleset()
    proc = svc.dry_run(_one_pod_service(hosts, 1))
    assert proc.returncode == 0, proc.stderr
    diff_lines = proc.stdout.splitlines()
    assert any(line.startswith("-") and "10.244.1.2" in line for line in diff_lines), proc.stdout
    assert any(line.startswith("+") and "10.244.1.3" in line for line in diff_lines), proc.stdout
    assert svc.ruleset() == before
    results = lab.requests("client", "10.96.0.120", 80, 10, timeout=1.0)
    assert all_ok(results) == [] and set(pods_seen(results)) == {"pod-a"}


BAD_INPUTS = {
    "port out of range": lambda hosts: manifest(service("bad", [port(70000)], cluster_ip="10.96.0.121")),
    "not an IP address": lambda hosts: manifest(service("bad", [port(80)], cluster_ip="10.96.0.999")),
    "YAML syntax error": lambda hosts: "apiVersion: v1\nkind: Service\nmetadata: {name: bad\n",
    "valid Service next to a bad one": lambda hosts: manifest(
        *_one_pod_service(hosts, 1), service("bad", [port(80, 8080, protocol="HTTP")])),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
def test_bad_input_leaves_the_kernel_untouched(lab, svc, hosts, bad):
    svc.apply(_one_pod_service(hosts, 0))
    before = svc.ruleset()
    proc = svc.apply(BAD_INPUTS[bad](hosts), check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.strip() and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert svc.ruleset() == before
    results = lab.requests("client", "10.96.0.120", 80, 10, timeout=1.0)
    assert all_ok(results) == [] and set(pods_seen(results)) == {"pod-a"}


def test_no_failed_connections_while_reapplying(lab, svc, hosts):
    a, b, c, _ = hosts
    base = [service("steady", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.130"),
            *web_pods([a, b])]
    # Both manifests keep pod-a and pod-b available; the second adds pod-c (a changed chain and
    # map element for the steady Service) and an unrelated Service.
    variants = [base, [*base, pod(c, {"app": "web"}),
                       service("unrelated", [port(80)], selector={"app": "none"}, cluster_ip="10.96.0.131")]]
    svc.apply(base)
    stop = threading.Event()
    batches = []   # (start, end, results)
    errors = []

    def loop():
        try:
            for _ in range(400):   # bounded: ~400 x 40 requests at most
                if stop.is_set():
                    return
                start = time.monotonic()
                results = lab.requests("client", "10.96.0.130", 80, 40, timeout=1.0)
                batches.append((start, time.monotonic(), results))
        except Exception as err:   # noqa: BLE001 - reported by the main thread
            errors.append(err)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        time.sleep(0.3)
        begin = time.monotonic()
        for i in range(20):
            proc = svc.apply(variants[(i + 1) % 2])
            assert proc.stdout.startswith("applied:"), proc.stdout
        end = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(timeout=120)
    assert not worker.is_alive() and errors == []
    results = [r for _, _, rs in batches for r in rs]
    during = [r for s, e, rs in batches if s < end and e > begin for r in rs]
    assert len(during) >= 100, f"only {len(during)} requests overlapped the applies"
    assert all_ok(results) == [], f"{len(all_ok(results))} of {len(results)} requests failed: {all_ok(results)[:5]}"
    assert set(pods_seen(results)) == {"pod-a", "pod-b", "pod-c"}


# Other tools' iptables rules (Docker's, kube-proxy's), as (table, chain to create, rule), given
# to the flavour svcctl writes with (iptables-nft for the nftables back end).
FOREIGN_RULES = (
    ("nat", "DOCKER", "-A DOCKER -i docker0 -j RETURN"),
    ("nat", "", "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"),
    ("filter", "DOCKER-USER", "-A DOCKER-USER -j RETURN"),
    ("filter", "", "-A FORWARD -j DOCKER-USER"),
    ("nat", "KUBE-SERVICES", "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j RETURN"),
    ("nat", "", "-I PREROUTING 1 -j KUBE-SERVICES"),
)


def _others(lab, svc):
    """Everything on the node that is not svcctl's: the test's nftables tables, and every
    iptables rule but svcctl's (in order: a rule moved is a difference)."""
    nft = [lab.node_exec(["nft", "list", "table", *t.split()]).stdout for t in ("inet other", "ip other")]
    saved = svc.saved(svc.flavour or "nft")
    return nft, [line for line in saved.splitlines() if "SVCCTL-" not in line]


def test_delete_leaves_other_tables_and_rules_in_place(lab, svc, hosts):
    lab.nft("table inet other {\n\tchain keep {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}\n"
            "table ip other {\n\tchain keep {\n\t}\n}\n")
    iptables = f"iptables-{svc.flavour or 'nft'}"
    for table, chain, rule in FOREIGN_RULES:
        if chain:
            lab.node_exec([iptables, "-t", table, "-N", chain])
        lab.node_exec([iptables, "-t", table, *rule.split()])
    try:
        others = _others(lab, svc)
        svc.apply(_one_pod_service(hosts, 0))
        assert svc.owned()
        assert _others(lab, svc) == others
        proc = svc.delete()
        assert proc.returncode == 0, proc.stderr
        assert svc.owned() == set()
        assert _others(lab, svc) == others
        # Nothing left to delete is fine too.
        again = svc.delete()
        assert again.returncode == 0 and "nothing to delete" in again.stdout
        assert _others(lab, svc) == others
        # The Service is gone: its IP falls into the sink.
        assert lab.requests("client", "10.96.0.120", 80, 1, timeout=FAST)[0].error == "timeout"
    finally:
        for table, chain, rule in reversed(FOREIGN_RULES):
            verb, builtin, *spec = rule.split()
            lab.node_exec([iptables, "-t", table, "-D", builtin, *spec[verb == "-I":]], check=False)
            if chain:
                lab.node_exec([iptables, "-t", table, "-X", chain], check=False)


def test_incremental_apply_sends_only_an_update(lab, svc, hosts):
    a, b, c, _ = hosts
    sticky = service("pinned", [port(80)], selector={"app": "pinned"}, cluster_ip="10.96.0.141",
                     sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    first = [service("inc", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.140"), sticky,
             pod(a, {"app": "web"}), *web_pods([b, c], labels={"app": "pinned"})]
    created = svc.apply(first)
    assert "created" in created.stdout, created.stdout
    pins = pods_seen(lab.requests("client", "10.96.0.141", 80, 20, timeout=1.0))
    assert len(pins) == 1 and sum(pins.values()) == 20, pins

    # One Service changes: pod-d joins "inc".
    second = [*first, pod(hosts[3], {"app": "web"})]
    proc = svc.apply(second)
    out = proc.stdout
    assert out.startswith("applied: ip: "), out
    assert "created" not in out and "replaced" not in out and "ip6:" not in out, out
    results = lab.requests("client", "10.96.0.140", 80, 40, timeout=1.0)
    assert all_ok(results) == [] and set(pods_seen(results)) == {"pod-a", "pod-d"}
    # The other Service kept its state: the client is still pinned to the same pod.
    assert pods_seen(lab.requests("client", "10.96.0.141", 80, 10, timeout=1.0)) == {next(iter(pins)): 10}
    assert svc.apply(second).stdout.startswith("unchanged"), "a second apply should send nothing"
