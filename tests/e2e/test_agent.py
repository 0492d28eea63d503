"""``svcctl run`` end to end: the agent runs in the lab's node namespace (``ip netns exec``),
watches a real directory, and real packets, HTTP requests and signals check what it does.

Every test runs once per back end (scenarios.backend_fixture), with one lab per back end (pods
pod-a..pod-d, clients ``client`` and ``client2``); every test starts its own agent on a fresh
directory (``--min-sync-period 0 --sync-period 1s``, so drift is repaired and a failing kernel is
noticed within a few seconds) and ends with no svcctl tables or chains.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from lab import NODE_IP4, Lab, pods_seen
from scenarios import (NODE, NODE_ARGS, OTHER_NODE, SVCCTL, Svcctl, backend_fixture, endpoint_slice,  # noqa: F401 (fixture)
                       manifest, port, service, slice_endpoint)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft")), reason="needs iproute2 (ip) and nft"),
    pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="needs /usr/bin/python3"),
    pytest.mark.skipif(not os.access(SVCCTL, os.X_OK), reason=f"svcctl not installed at {SVCCTL}"),
]

PODS = ("pod-a", "pod-b", "pod-c", "pod-d")
HEALTH = f"{NODE_IP4}:10256"   # on the node's external address: clients query it like a load balancer
METRICS = f"{NODE_IP4}:10249"
WAIT = 8.0                     # longest a change may take to show (far above what it takes)

# Runs in a namespace: argv[1] is the URL. Prints {"status", "headers", "body"} or {"error"}.
_HTTP = r"""
import json, sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        out = {"status": r.status, "headers": dict(r.headers), "body": r.read().decode()}
except urllib.error.HTTPError as e:
    out = {"status": e.code, "headers": dict(e.headers), "body": e.read().decode()}
except OSError as e:
    out = {"error": str(e)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def lab(backend):
    with Lab(pods=PODS, clients=("client", "client2"), tcp_ports=(8080,), udp_ports=(8080,)) as lab:
        probe = Svcctl(lab, "/nonexistent", backend).delete()
        if probe.returncode == 3:
            pytest.skip(f"svcctl cannot reach {backend}: {probe.stderr.strip()}")
        yield lab


@pytest.fixture
def svc(lab, backend, tmp_path):
    return Svcctl(lab, tmp_path, backend)


class Agent:
    """One ``svcctl run`` in the node namespace, on ``directory``; its log in ``log_path``."""

    def __init__(self, svc, directory, *extra):
        self.lab, self.directory = svc.lab, directory
        self.log_path = directory.parent / f"{directory.name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", svc.lab.netns("node"), str(SVCCTL), "run", *svc.backend_args(), str(directory), *NODE_ARGS,
             "--min-sync-period", "0", "--sync-period", "1s", "--health-addr", HEALTH, "--metrics-addr", METRICS, *extra],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def write(self, name, *objects):
        """Write a manifest file atomically (as tools do: a temporary name, then a rename)."""
        temporary = self.directory / f".{name}.tmp"
        temporary.write_text(manifest(*objects))
        temporary.rename(self.directory / name)

    def remove(self, name):
        (self.directory / name).unlink()

    def log(self):
        return self.log_path.read_text()

    def get(self, url, from_name="client"):
        proc = self.lab.exec_in(from_name, ["/usr/bin/python3", "-I", "-c", _HTTP, url])
        return json.loads(proc.stdout)

    def stop(self, sig=signal.SIGTERM):
        """Signal the agent; (exit status, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=10)
        return code, time.monotonic() - start

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def agent(svc, tmp_path):
    directory = tmp_path / "manifests"
    directory.mkdir()
    started = []

    def start(*objects_by_file, extra=()):
        for name, objects in objects_by_file:
            (directory / name).write_text(manifest(*objects))
        a = Agent(svc, directory, *extra)
        started.append(a)
        wait_for(lambda: "msg=sync " in a.log() or a.proc.poll() is not None, what="the first sync")
        assert a.proc.poll() is None, a.log()
        return a

    yield start
    for a in started:
        a.close()
    assert svc.delete().returncode == 0


def wait_for(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def answering(lab, address, port_, n=30, client="client"):
    """Which pods answered n requests (failed ones as "failed")."""
    results = lab.requests(client, address, port_, n, timeout=0.5)
    seen = pods_seen(results)
    failed = sum(not r.ok for r in results)
    return {**seen, **({"failed": failed} if failed else {})}


def until_answering(lab, address, port_, expected, n=30):
    """Wait until exactly the pods ``expected`` (a set; empty: none, every request fails) answer.
    (Waiting for none asks 5 times: a dropped request takes its whole timeout.)"""
    def check():
        seen = answering(lab, address, port_, n if expected else 5)
        return set(seen) - {"failed"} == expected and (("failed" in seen) == (not expected))
    wait_for(check, f"{address}:{port_} answered by {sorted(expected) or 'nobody'}")


def web(hosts_, *, ready=True, serving=True, terminating=False, node=NODE):
    return [slice_endpoint(h.ip4, ready=ready, serving=serving, terminating=terminating, node=node) for h in hosts_]


def web_slice(endpoints_, name="web"):
    return endpoint_slice(name, f"{name}-1", endpoints_, [{"port": 8080, "protocol": "TCP"}])


WEB = service("web", [port(80)], cluster_ip="10.96.1.10")


def test_rules_follow_endpoint_changes(lab, agent):
    a, b, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB]), ("web-slice.json", [web_slice(web([a]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    run.write("web-slice.json", web_slice(web([a, b])))                          # added
    until_answering(lab, "10.96.1.10", 80, {"pod-a", "pod-b"})
    run.write("web-slice.json", web_slice(web([a]) + web([b], ready=False, serving=False)))   # not ready
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    # No ready endpoint left: the serving, terminating ones take the traffic (kube-proxy's fallback).
    run.write("web-slice.json", web_slice(web([a], ready=False, terminating=True) + web([b], ready=False, serving=False)))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    run.write("web-slice.json", web_slice(web([b])))                             # a terminated, b ready
    until_answering(lab, "10.96.1.10", 80, {"pod-b"})
    run.remove("web-slice.json")                                                 # no endpoints: rejected
    until_answering(lab, "10.96.1.10", 80, set())
    assert lab.requests("client", "10.96.1.10", 80, 1, timeout=0.5)[0].error == "refused"


def test_rules_follow_services_added_removed_and_retyped(lab, agent):
    a, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    api = service("api", [port(81)], cluster_ip="10.96.1.11")
    run.write("api.json", api, web_slice(web([a]), name="api"))                  # Service added
    until_answering(lab, "10.96.1.11", 81, {"pod-a"})
    node_port = service("api", [port(81, node_port=30081)], cluster_ip="10.96.1.11", type="NodePort")
    run.write("api.json", node_port, web_slice(web([a]), name="api"))            # type changed
    until_answering(lab, NODE_IP4, 30081, {"pod-a"})
    run.remove("api.json")                                                       # Service removed
    until_answering(lab, NODE_IP4, 30081, set())
    assert answering(lab, "10.96.1.10", 80) == {"pod-a": 30}                     # the other one untouched


def test_udp_flows_that_began_before_a_new_node_port_are_cleared(lab, agent):
    """A client sends to a NodePort before the agent has rules for it: the node answers port
    unreachable and conntrack keeps the flow, not DNATed. When the Service arrives, the agent's
    commit deletes that flow (test_conntrack.py has the apply side), and the client's next
    datagram from the same source port reaches the pod."""
    a, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a]))]))
    lab.datagram("client", NODE_IP4, 30053, answer=False)
    dns = service("dns", [port(53, protocol="UDP", node_port=30053)], cluster_ip="10.96.1.53", type="NodePort")
    dns_slice = endpoint_slice("dns", "dns-1", web([a]), [{"port": 8080, "protocol": "UDP"}])
    run.write("dns.json", dns, dns_slice)
    wait_for(lambda: "msg=conntrack" in run.log(), "the conntrack cleanup")
    assert re.search(r"msg=conntrack removed_endpoints=0 new_ports=1$", run.log(), re.M), run.log()
    assert lab.datagram("client", NODE_IP4, 30053) == "pod-a"


def test_no_failed_connections_to_unchanged_services_during_churn(lab, agent):
    a, b, c, d = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a, b]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a", "pod-b"})
    stop, batches, errors = threading.Event(), [], []

    def load():
        try:
            while not stop.is_set():
                batches.append(lab.requests("client", "10.96.1.10", 80, 40, timeout=1.0))
        except Exception as err:   # noqa: BLE001 - reported below
            errors.append(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        for i in range(60):   # other Services come, change and go, many syncs a second
            name = f"churn-{i % 7}"
            if i % 5 == 4:
                if (run.directory / f"{name}.json").exists():
                    run.remove(f"{name}.json")
                continue
            run.write(f"{name}.json", service(name, [port(80)], cluster_ip=f"10.96.2.{i % 7 + 1}"),
                      web_slice(web([c, d][: i % 3]), name=name))
            time.sleep(0.03)
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(timeout=60)
    results = [r for batch in batches for r in batch]
    assert errors == [] and len(results) >= 100
    assert [r.error for r in results if not r.ok] == []
    assert set(pods_seen(results)) == {"pod-a", "pod-b"}
    assert run.log().count("msg=sync ") > 10


def test_healthz_and_metrics(lab, svc, agent):
    a, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a]))]))
    health = run.get(f"http://{HEALTH}/healthz")
    assert health["status"] == 200 and health["headers"]["Content-Type"] == "application/json"
    body = json.loads(health["body"])
    assert body["healthy"] is True and body["lastUpdated"].endswith("Z")
    assert run.get(f"http://{HEALTH}/livez")["status"] == 200
    assert run.get(f"http://{HEALTH}/other")["status"] == 404
    metrics = run.get(f"http://{METRICS}/metrics")
    assert metrics["status"] == 200 and metrics["headers"]["Content-Type"].startswith("text/plain")
    text = metrics["body"]
    for name in ("svcctl_sync_proxy_rules_duration_seconds_bucket", "svcctl_sync_proxy_rules_last_timestamp_seconds",
                 "svcctl_input_problems", "svcctl_invalid_inputs_total", "svcctl_kernel_errors_total",
                 'svcctl_rules{kind="chains"}', 'svcctl_proxy_healthz_total{code="200"}'):
        assert name in text, name
    assert "svcctl_services 1.0" in text and "svcctl_endpoints 1.0" in text

    # The kernel refuses every sync: /healthz turns 503 once the last good sync is older than
    # twice --sync-period, and 200 again after.
    refuse, accept = _refusing(svc)
    refuse()
    wait_for(lambda: run.get(f"http://{HEALTH}/healthz")["status"] == 503, "/healthz 503")
    assert "msg=\"sync failed\"" in run.log()
    assert "svcctl_kernel_errors_total 0.0" not in run.get(f"http://{METRICS}/metrics")["body"]
    accept()
    wait_for(lambda: run.get(f"http://{HEALTH}/healthz")["status"] == 200, "/healthz 200 again")
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})


def _refusing(svc):
    """Two callables: one makes the kernel refuse every sync of svcctl's, the other undoes it.
    nftables: a table of svcctl's name that svcctl did not make. iptables: another program's
    rule jumping into a chain named as svcctl names them, which svcctl then tries to delete and
    iptables refuses to (a chain in use)."""
    lab = svc.lab
    if svc.flavour is None:
        # In one transaction: the agent repairs deleted tables within its 1 s sync period, so a
        # delete followed by a second command could let it make its table again in between.
        return (lambda: lab.nft("add table ip svcctl\ndelete table ip svcctl\nadd table ip svcctl\n"),
                lambda: lab.node_exec(["nft", "delete", "table", "ip", "svcctl"]))
    iptables = [f"iptables-{svc.flavour}", "-t", "nat"]

    def refuse():
        for args in (["-N", "SVCCTL-LEFTOVER"], ["-N", "OTHER"], ["-A", "OTHER", "-j", "SVCCTL-LEFTOVER"]):
            lab.node_exec([*iptables, *args])

    def accept():
        for args in (["-F", "OTHER"], ["-X", "OTHER"]):
            lab.node_exec([*iptables, *args])

    return refuse, accept


def _delete_by_hand(svc):
    """Two steps that take svcctl's rules away behind its back: the dispatch, then everything."""
    lab = svc.lab
    if svc.flavour is None:
        return (lambda: lab.node_exec(["nft", "flush", "map", "ip", "svcctl", "service-ips"]),
                lambda: lab.node_exec(["nft", "delete", "table", "ip", "svcctl"]))
    iptables = [f"iptables-{svc.flavour}", "-t", "nat"]
    return (lambda: lab.node_exec([*iptables, "-F", "SVCCTL-SERVICES"]),
            lambda: [lab.node_exec([*iptables, *args]) for args in (["-F"], ["-X"])])


def test_health_check_node_port_follows_local_endpoints(lab, agent):
    a, *_ = (lab.pods[p] for p in PODS)
    lb = service("lb", [port(80, node_port=30090)], cluster_ip="10.96.1.20", type="LoadBalancer",
                 externalTrafficPolicy="Local", healthCheckNodePort=32090)
    run = agent(("lb.json", [lb, web_slice(web([a]), name="lb")]))
    url = f"http://{NODE_IP4}:32090/"
    first = wait_for(lambda: (r := run.get(url)).get("status") == 200 and r, "health check 200")
    assert json.loads(first["body"]) == {"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 1,
                                         "serviceProxyHealthy": True}
    assert first["headers"]["X-Load-Balancing-Endpoint-Weight"] == "1"
    run.write("lb.json", lb, web_slice(web([a], node=OTHER_NODE), name="lb"))  # the endpoint is elsewhere now
    gone = wait_for(lambda: (r := run.get(url)).get("status") == 503 and r, "health check 503")
    assert json.loads(gone["body"])["localEndpoints"] == 0
    run.write("lb.json", lb, web_slice(web([a]), name="lb"))
    wait_for(lambda: run.get(url).get("status") == 200, "health check 200 again")
    run.remove("lb.json")                                                      # the Service is gone: so is its server
    wait_for(lambda: "error" in run.get(url), "health check closed")


def test_broken_file_keeps_the_last_good_rules(lab, agent):
    a, b, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    (run.directory / "web.json").write_text(manifest(WEB, web_slice(web([a, b])))[:150])   # a partial write
    wait_for(lambda: "invalid input" in run.log(), "the problem in the log")
    problem = next(line for line in run.log().splitlines() if "invalid input" in line)
    assert f"{run.directory}/web.json:" in problem and "invalid JSON" in problem
    assert "svcctl_input_problems 1.0" in run.get(f"http://{METRICS}/metrics")["body"]
    assert answering(lab, "10.96.1.10", 80) == {"pod-a": 30}                   # still the last good rules
    # An invalid object beside valid ones: the valid ones are taken, the invalid keeps its last good version.
    bad = service("web", [port(99999)], cluster_ip="10.96.1.10")
    api = service("api", [port(81)], cluster_ip="10.96.1.11")
    run.write("web.json", bad, web_slice(web([a, b])), api, web_slice(web([b]), name="api"))
    until_answering(lab, "10.96.1.10", 80, {"pod-a", "pod-b"})
    until_answering(lab, "10.96.1.11", 81, {"pod-b"})
    assert "spec.ports[0].port: Invalid value: 99999" in run.log()
    assert run.proc.poll() is None


def test_resync_restores_rules_deleted_by_hand(lab, svc, agent):
    a, *_ = (lab.pods[p] for p in PODS)
    agent(("web.json", [WEB, web_slice(web([a]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    dispatch, everything = _delete_by_hand(svc)
    dispatch()
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    everything()
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})


def test_sigterm_stops_at_once_and_leaves_the_rules(lab, agent):
    a, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    code, seconds = run.stop(signal.SIGTERM)
    assert code == 0 and seconds < 1.0, (code, seconds, run.log())
    assert "stopped" in run.log() and "Traceback" not in run.log()
    assert answering(lab, "10.96.1.10", 80) == {"pod-a": 30}
    # A new agent adopts the live tables: nothing to send, nothing disturbed.
    again = agent(extra=())
    assert "sent=\"no changes\"" in again.log().splitlines()[1], again.log()
    assert again.stop(signal.SIGINT)[0] == 0


def test_sighup_reloads_the_rules_whole_and_keeps_running(lab, agent):
    a, *_ = (lab.pods[p] for p in PODS)
    run = agent(("web.json", [WEB, web_slice(web([a]))]))
    until_answering(lab, "10.96.1.10", 80, {"pod-a"})
    run.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "kind=reload" in run.log(), "the reload sync")
    assert run.proc.poll() is None and 'msg="SIGHUP: reloading the rules whole"' in run.log(), run.log()
    assert answering(lab, "10.96.1.10", 80) == {"pod-a": 30}
    assert run.stop(signal.SIGTERM)[0] == 0


def test_invalid_options_exit_2(lab, tmp_path):
    for args in (["run", str(tmp_path / "missing")], ["run", str(tmp_path), "--sync-period", "soon"],
                 ["run", str(tmp_path), "--health-addr", "nowhere"]):
        proc = lab.node_exec([str(SVCCTL), *args], check=False, timeout=30)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
