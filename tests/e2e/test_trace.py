"""``svcctl trace`` against real packets: for each real-traffic scenario of test_traffic.py, the same
manifests are applied in the lab's node, real connections are made, and the trace's verdict,
endpoints, probabilities and masquerade decision must be what the packets did:

* the verdict: dnat (a pod answered), reject (refused at once), drop (timed out, nothing left
  the node), untouched (the packet went on unchanged: it left by the service route's sink, or
  the node had no route);
* the endpoints: every answer came from a predicted endpoint (pod address and port), and the
  counts fit the predicted probabilities (Pearson's chi-square, p = 0.001);
* masquerade: an endpoint saw another address than the client's exactly when the trace says;
* ``--live`` (a copy of the node's live rules, probed in a throwaway namespace) agrees as well;
  and once the live rules are altered by hand, it disagrees, exit 1, as real packets do.

Same lab shape as test_traffic.py (its fixtures and constants are reused).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lab import NODE_IP4, NODE_IP6, POD_GATEWAY4, POD_GATEWAY6
from scenarios import (NODE_ARGS, OTHER_NODE, endpoint_slice, manifest, pod, port,
                       service, slice_endpoint)
import test_traffic
from scenarios import backend_fixture  # noqa: F401 (fixture: every test once per back end)
from test_traffic import EXTERNAL_IP, FAST, LB_IP, web_pods

pytestmark = test_traffic.pytestmark
# test_traffic.py's fixtures: a lab of the same shape for this module, svcctl in its node, the pods.
lab, svc, hosts = test_traffic.lab, test_traffic.svc, test_traffic.hosts

FAMILY_OF = {4: "ip4", 6: "ip6"}
# Chi-square critical values at p = 0.00001, by degrees of freedom: a module of ~20 such checks
# fails from chance alone once in ~5000 runs. The cascade's exact probabilities are the kernel
# check's (--live reads them from the live rules); this says real packets follow them.
CHI2 = {1: 19.511, 2: 23.026, 3: 25.902, 4: 28.473}
SPREAD = 400  # connections where the spread over several endpoints is checked


def _source(lab, client, to):
    """The address a client's connection to ``to`` leaves with: its own for a pod or a client; for
    the node, the one its routing picks (``ip route get``)."""
    version = 6 if ":" in to else 4
    if client != "node":
        return getattr(lab.hosts[client], FAMILY_OF[version])
    route = json.loads(lab.node_exec(["ip", "-j", f"-{version}", "route", "get", to]).stdout)[0]
    return route["prefsrc"]


def _sink_packets(lab):
    """Packets the node sent into the service routes' sink (what nothing DNATed leaves by)."""
    (link,) = json.loads(lab.node_exec(["ip", "-j", "-s", "link", "show", "svc0"]).stdout)
    return link["stats64"]["tx"]["packets"]


def _endpoint(lab, reply, version):
    address = getattr(lab.pods[reply["pod"]], FAMILY_OF[version])
    return f"[{address}]:{reply['port']}" if version == 6 else f"{address}:{reply['port']}"


def _chi_square(counts, expected):
    """Pearson's statistic of ``counts`` against the probabilities ``expected`` (address -> p)."""
    total = sum(counts.values())
    return sum((counts.get(a, 0) - total * p) ** 2 / (total * p) for a, p in expected.items())


def apply(svc, *objects, path=None, node_args=NODE_ARGS):
    """``svcctl apply`` of the objects (or of the manifest at ``path``) in the node; the path."""
    path = path or svc.write(manifest(*objects))
    proc = svc.run("apply", path, *node_args)
    assert proc.returncode == 0, proc.stderr
    return path


def trace(svc, path, client, to, port_number, proto="tcp", live=True, node_args=NODE_ARGS):
    """``svcctl trace -o json --live`` (or ``--kernel``) in the node for a connection from ``client``."""
    source = _source(svc.lab, client, to)
    origin = f"node:{source}" if client == "node" else source
    target = f"[{to}]:{port_number}" if ":" in to else f"{to}:{port_number}"
    args = ["trace", path, *node_args, "--to", target, "--from", origin, "--protocol", proto, "-o", "json"]
    proc = svc.run(*args, "--live" if live else "--kernel")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout), proc.returncode


def observe(svc, path, client, to, port_number, proto="tcp", n=None, node_args=NODE_ARGS):
    """Trace one connection's way, make ``n`` real ones (default: SPREAD over several endpoints,
    else 30), and check that both tell the same story. Returns the trace (a dict, the JSON
    output) and the results."""
    lab = svc.lab
    predicted, status = trace(svc, path, client, to, port_number, proto, node_args=node_args)
    assert status == 0 and predicted["kernel"]["agrees"], predicted["kernel"]["differences"]
    verdict = predicted["verdict"]
    before = _sink_packets(lab)
    timeout = 1.5 if verdict == "dnat" else FAST if verdict in ("drop", "untouched") else 2.0
    spread = verdict == "dnat" and len(predicted["endpoints"]) > 1 and not predicted["affinity"]
    n = 2 if verdict != "dnat" else n or (SPREAD if spread else 30)
    results = lab.requests(client, to, port_number, n, proto=proto, timeout=timeout)
    errors = {r.error for r in results}
    if verdict == "dnat":
        assert errors == {None}, Counter(r.error for r in results)
    elif verdict == "reject":
        assert errors == {"refused"}, errors
    elif verdict == "drop":
        assert errors == {"timeout"} and _sink_packets(lab) == before, (errors, "packets left by the sink")
    else:  # untouched: it left as it came, by the sink, or the node had no route for it
        assert errors <= {"timeout", "unreachable"}, errors
        assert "unreachable" in errors or _sink_packets(lab) > before, "nothing left by the sink"
    if verdict != "dnat":
        return predicted, results
    version = 6 if ":" in to else 4
    chances = {e["address"]: e["probability"] for e in predicted["endpoints"]}
    masquerades = {e["address"]: e["masquerade"] for e in predicted["endpoints"]}
    seen = Counter(_endpoint(lab, r.reply, version) for r in results)
    assert set(seen) <= set(chances), f"answered by {set(seen) - set(chances)}, not predicted"
    if spread:
        assert set(seen) == set(chances), seen
        assert _chi_square(seen, chances) < CHI2[len(chances) - 1], (seen, chances)
    source = _source(lab, client, to)
    for r in results:
        endpoint = _endpoint(lab, r.reply, version)
        assert (r.reply["peer"] != source) is masquerades[endpoint], (endpoint, r.reply["peer"], source)
    return predicted, results


# --- the scenarios of test_traffic.py ---------------------------------------------------------------


def test_cluster_ip(svc, hosts):
    a, b, c, _ = hosts
    path = apply(svc, service("spread", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.10"), *web_pods([a, b, c]))
    predicted, _ = observe(svc, path, "client", "10.96.0.10", 80)
    assert [e["probability"] for e in predicted["endpoints"]] == [pytest.approx(1 / 3)] * 3
    assert predicted["masquerade"] and predicted["path"] == "cluster-ip"
    observe(svc, path, "pod-a", "10.96.0.10", 80)  # a pod: source kept (but reaching itself)


def test_named_target_port(svc, hosts):
    a, b, c, _ = hosts
    path = apply(svc,
        service("named", [port(80, "web", name="http")], selector={"app": "web"}, cluster_ip="10.96.0.11"),
        pod(a, {"app": "web"}, container_ports=[("web", 8080)]),
        pod(b, {"app": "web"}, container_ports=[("web", 9090)]),
        pod(c, {"app": "web"}, container_ports=[("metrics", 8080)]),
    )
    predicted, _ = observe(svc, path, "client", "10.96.0.11", 80)
    assert sorted(e["address"] for e in predicted["endpoints"]) == [f"{a.ip4}:8080", f"{b.ip4}:9090"]


def test_udp(svc, hosts):
    a, b, _, _ = hosts
    path = apply(svc, service("dns", [port(53, 9090, protocol="UDP", name="dns")], selector={"app": "dns"}, cluster_ip="10.96.0.53"),
                              *web_pods([a, b], labels={"app": "dns"}))
    observe(svc, path, "client", "10.96.0.53", 53, proto="udp")
    observe(svc, path, "pod-c", "10.96.0.53", 53, proto="udp")
    # TCP 53 is no port of the Service.
    predicted, _ = observe(svc, path, "client", "10.96.0.53", 53)
    assert predicted["service"] is None


@pytest.mark.parametrize("node_ip", [NODE_IP4, NODE_IP6])
def test_node_port_cluster_policy(svc, hosts, node_ip):
    a, _, _, d = hosts
    path = apply(svc,
        service("np-cluster", [port(80, node_port=30080)], selector={"app": "web"}, type="NodePort",
                dual_stack=("10.96.0.20", "fd00:10:96::20"), externalTrafficPolicy="Cluster"),
        pod(a, {"app": "web"}), pod(d, {"app": "web"}, node=OTHER_NODE),
    )
    predicted, _ = observe(svc, path, "client", node_ip, 30080)
    assert (predicted["path"], predicted["masquerade"]) == ("node-port", True)


def test_node_port_local_policy(svc, hosts):
    a, _, _, d = hosts
    path = apply(svc,
        service("np-local", [port(80, node_port=30081)], selector={"app": "web"}, type="NodePort",
                cluster_ip="10.96.0.21", externalTrafficPolicy="Local"),
        pod(a, {"app": "web"}), pod(d, {"app": "web", "role": "remote"}, node=OTHER_NODE),
        service("np-remote", [port(80, node_port=30082)], selector={"role": "remote"}, type="NodePort",
                cluster_ip="10.96.0.22", externalTrafficPolicy="Local"),
    )
    local, _ = observe(svc, path, "client", NODE_IP4, 30081)
    assert [e["address"] for e in local["endpoints"]] == [f"{a.ip4}:8080"] and not local["masquerade"]
    observe(svc, path, "client", "10.96.0.21", 80)
    observe(svc, path, "pod-c", NODE_IP4, 30081)
    dropped, _ = observe(svc, path, "client", NODE_IP4, 30082)
    assert dropped["verdict"] == "drop"
    observe(svc, path, "pod-c", NODE_IP4, 30082, n=10)
    observe(svc, path, "node", NODE_IP4, 30082, n=10)


def test_load_balancer_source_ranges(svc, hosts, lab):
    a, b, _, _ = hosts
    allowed = lab.clients["client"]
    path = apply(svc,
        service("lb", [port(80, node_port=30090)], selector={"app": "web"}, type="LoadBalancer",
                cluster_ip="10.96.0.30", loadBalancerSourceRanges=[f"{allowed.ip4}/32"],
                status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}}),
        *web_pods([a, b]),
    )
    ok, _ = observe(svc, path, "client", LB_IP, 80)
    assert ok["path"] == "load-balancer-ip"
    refused, _ = observe(svc, path, "client2", LB_IP, 80)
    assert refused["verdict"] == "drop" and "in none of them: dropped" in refused["reasons"][-1]
    observe(svc, path, "client2", "10.96.0.30", 80)
    observe(svc, path, "client2", NODE_IP4, 30090)


def test_external_ips(svc, hosts):
    a, b, _, _ = hosts
    path = apply(svc, service("ext", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.40", externalIPs=[EXTERNAL_IP]),
                              *web_pods([a, b]))
    for client in ("client", "client2"):
        predicted, _ = observe(svc, path, client, EXTERNAL_IP, 80)
        assert (predicted["path"], predicted["masquerade"]) == ("external-ip", True)
    other, _ = observe(svc, path, "client", EXTERNAL_IP, 81)
    assert other["verdict"] == "untouched"


def test_session_affinity(svc, hosts):
    a, b, c, _ = hosts
    path = apply(svc, service("sticky", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.50",
                                      sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
                              *web_pods([a, b, c]))
    for client in ("client", "client2", "pod-d"):
        predicted, results = observe(svc, path, client, "10.96.0.50", 80, n=30)
        assert predicted["affinity"] and predicted["affinityTimeout"] == 600
        assert len({r.reply["pod"] for r in results}) == 1, f"{client} was not pinned"


@pytest.mark.parametrize("proto, client, vip", [
    ("tcp", "client", "10.96.0.60"), ("tcp", "pod-a", "10.96.0.60"), ("tcp", "node", "10.96.0.60"),
    ("udp", "client", "10.96.0.60"), ("udp", "pod-a", "10.96.0.60"),
    ("tcp", "client", "fd00:10:96::60"), ("udp", "client", "fd00:10:96::60"),
])
def test_no_endpoints(svc, hosts, proto, client, vip):
    a, b, _, _ = hosts
    path = apply(svc, service("empty", [port(80, protocol=proto.upper())], selector={"app": "nothing"},
                                      dual_stack=("10.96.0.60", "fd00:10:96::60")),
                              *web_pods([a, b]))
    predicted, _ = observe(svc, path, client, vip, 80, proto=proto)
    assert predicted["verdict"] == "reject"


def test_terminating_fallback(svc, hosts):
    a, b, c, _ = hosts
    draining = [slice_endpoint(a.ip4, ready=False, serving=True, terminating=True),
                slice_endpoint(b.ip4, ready=False, serving=False, terminating=True)]
    ports = [{"name": "", "port": 8080, "protocol": "TCP"}]
    term = service("term", [port(80)], cluster_ip="10.96.0.80")
    path = apply(svc, term, endpoint_slice("term", "term-1", draining, ports))
    predicted, _ = observe(svc, path, "client", "10.96.0.80", 80, n=30)
    assert [e["address"] for e in predicted["endpoints"]] == [f"{a.ip4}:8080"]
    assert any("the serving, terminating ones stand in" in r for r in predicted["reasons"])
    ready = slice_endpoint(c.ip4, ready=True, serving=True, terminating=False)
    path = apply(svc, term, endpoint_slice("term", "term-1", [*draining, ready], ports))
    predicted, _ = observe(svc, path, "client", "10.96.0.80", 80, n=30)
    assert [e["address"] for e in predicted["endpoints"]] == [f"{c.ip4}:8080"]


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_ipv6(svc, hosts, proto):
    a, b, _, _ = hosts
    path = apply(svc, service("dual", [port(80, protocol=proto.upper())], selector={"app": "web"},
                                      dual_stack=("10.96.0.90", "fd00:10:96::90")),
                              *web_pods([a, b]))
    observe(svc, path, "client", "fd00:10:96::90", 80, proto=proto)
    predicted, _ = observe(svc, path, "pod-c", "fd00:10:96::90", 80, proto=proto)
    assert not predicted["masquerade"]
    observe(svc, path, "client", "10.96.0.90", 80, proto=proto)


@pytest.mark.parametrize("vip, gateway", [("10.96.0.100", POD_GATEWAY4), ("fd00:10:96::100", POD_GATEWAY6)])
def test_hairpin(svc, hosts, vip, gateway):
    a, b, _, _ = hosts
    path = apply(svc, service("self", [port(80)], selector={"app": "self"}, dual_stack=("10.96.0.100", "fd00:10:96::100")),
                              pod(a, {"app": "self"}), pod(b, {"app": "web"}))
    predicted, results = observe(svc, path, "pod-a", vip, 80, n=10)
    assert predicted["masquerade"] and any(r.startswith("nat postrouting: hairpin") for r in predicted["reasons"])
    assert {r.reply["peer"] for r in results} == {gateway}


def test_node_local_traffic(svc, hosts):
    a, b, c, _ = hosts
    path = apply(svc, service("from-node", [port(80)], selector={"app": "web"}, dual_stack=("10.96.0.110", "fd00:10:96::110")),
                              *web_pods([a, b, c]))
    for vip in ("10.96.0.110", "fd00:10:96::110"):
        predicted, _ = observe(svc, path, "node", vip, 80)
        assert predicted["fromNode"]


def test_undefined_port(svc, hosts):
    a, _, _, _ = hosts
    path = apply(svc, service("spread", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.10"), pod(a, {"app": "web"}))
    for proto in ("tcp", "udp"):
        predicted, _ = observe(svc, path, "client", "10.96.0.10", 81, proto=proto)
        assert (predicted["service"], predicted["verdict"]) == (None, "reject")
    # An address of the service CIDR that no Service holds: dropped, nothing leaves the node.
    predicted, _ = observe(svc, path, "pod-b", "10.96.0.199", 80)
    assert predicted["verdict"] == "drop"


def test_masquerade_all(svc, hosts):
    a, _, _, d = hosts
    args = (*NODE_ARGS, "--masquerade-all")
    path = apply(svc, service("np-local", [port(80, node_port=30081)], selector={"app": "web"}, type="NodePort",
                              cluster_ip="10.96.0.21", externalTrafficPolicy="Local"),
                 pod(a, {"app": "web"}), pod(d, {"app": "web"}, node=OTHER_NODE), node_args=args)
    inside, _ = observe(svc, path, "pod-c", "10.96.0.21", 80, node_args=args)
    assert inside["masquerade"] and "nat prerouting: --masquerade-all: marked for masquerade" in inside["reasons"]
    local, _ = observe(svc, path, "client", NODE_IP4, 30081, node_args=args)
    assert not local["masquerade"]  # externalTrafficPolicy Local keeps the client's address


# --- the kernel disagreeing ------------------------------------------------------------------------


def test_compiled_rules_agree_and_altered_live_rules_do_not(svc, hosts, lab):
    a, b, c, _ = hosts
    path = apply(svc, service("spread", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.10"), *web_pods([a, b, c]))
    compiled, status = trace(svc, path, "client", "10.96.0.10", 80, live=False)
    assert compiled["kernel"]["agrees"] and status == 0
    # Someone edits the live rules by hand: pod-c's rule now sends to pod-d.
    d = hosts[3]
    _send_elsewhere(svc, lab, f"{c.ip4}:8080", f"{d.ip4}:8080")
    live, status = trace(svc, path, "client", "10.96.0.10", 80)
    assert status == 1 and not live["kernel"]["agrees"]
    assert f"the kernel's rules give {d.ip4}:8080 a chance of 1/3, the trace 0" in live["kernel"]["differences"]
    assert f"the kernel's rules give {c.ip4}:8080 a chance of 0, the trace 1/3" in live["kernel"]["differences"]
    # And real packets do what the live rules say, not what the trace predicted.
    seen = Counter(r.reply["pod"] for r in lab.requests("client", "10.96.0.10", 80, 200, timeout=1.0) if r.ok)
    assert set(seen) == {"pod-a", "pod-b", "pod-d"}, seen
    # diff shows the edit; delete and apply put the planned rules back: agreement again.
    assert svc.run("diff", path, *NODE_ARGS).returncode == 1
    svc.delete()
    apply(svc, path=path)
    assert trace(svc, path, "client", "10.96.0.10", 80)[0]["kernel"]["agrees"]


def _send_elsewhere(svc, lab, endpoint, other):
    """Edit the node's live rules by hand: the rule that DNATs to ``endpoint`` DNATs to ``other``."""
    if svc.flavour is None:
        chain = next(line.split()[1] for line in svc.ruleset().splitlines() if line.strip().startswith("chain svc-"))
        rules = lab.node_exec(["nft", "-a", "list", "chain", "ip", "svcctl", chain]).stdout
        handle = next(line.split("# handle ")[1] for line in rules.splitlines() if f"dnat to {endpoint}" in line)
        lab.node_exec(["nft", "replace", "rule", "ip", "svcctl", chain, "handle", handle, "meta", "l4proto", "tcp", "dnat", "to", other])
        return
    iptables = f"iptables-{svc.flavour}"
    rules = lab.node_exec([iptables, "-t", "nat", "-S"]).stdout.splitlines()
    line = next(r for r in rules if r.endswith(f"-j DNAT --to-destination {endpoint}"))
    chain = line.split()[1]
    number = [r for r in rules if r.startswith(f"-A {chain} ")].index(line) + 1
    lab.node_exec([iptables, "-t", "nat", "-R", chain, str(number), *line.split()[2:-1], other])
