"""``svcctl run --kubeconfig`` end to end: the agent runs in the lab's node namespace and watches
the fake API server of tests/fake_apiserver.py, which runs there too (HTTPS on 127.0.0.1, a CA
made for the test, a bearer token); real packets check that the rules follow the API's events,
that a dropped watch and a 410 lose no update, and that RBAC refusing a resource (403) is one
log line and a metric while the rules stay as they were.

The test drives the server through its standard input (commands as JSON lines, each answered
with one line): the server speaks the list/watch protocol by itself. Every test runs once per
back end (scenarios.backend_fixture), with a lab per back end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import Lab
from scenarios import NODE_ARGS, SVCCTL, Svcctl, backend_fixture, endpoint_slice, port, service, slice_endpoint  # noqa: F401 (fixture)
from test_agent import HEALTH, METRICS, answering, until_answering, wait_for

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft") and shutil.which("openssl")), reason="needs ip, nft and openssl"),
    pytest.mark.skipif(not os.access(SVCCTL, os.X_OK), reason=f"svcctl not installed at {SVCCTL}"),
]

FAKE_APISERVER = Path(__file__).parent.parent / "fake_apiserver.py"
TOKEN = "e2e-token"
PODS = ("pod-a", "pod-b", "pod-c")
WEB_IP = "10.96.1.10"


@pytest.fixture(scope="module")
def lab(backend):
    with Lab(pods=PODS, clients=("client",), tcp_ports=(8080,), udp_ports=(8080,)) as lab:
        probe = Svcctl(lab, "/nonexistent", backend).delete()
        if probe.returncode == 3:
            pytest.skip(f"svcctl cannot reach {backend}: {probe.stderr.strip()}")
        yield lab


class ApiServer:
    """The fake API server in the node namespace, driven through its standard input."""

    def __init__(self, lab, directory: Path):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.netns("node"), sys.executable, str(FAKE_APISERVER), "--listen", "127.0.0.1:0",
             "--certs", str(directory / "certs"), "--token", TOKEN],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = json.loads(self.proc.stdout.readline() or "{}")
        assert "port" in started, self.proc.stderr.read()
        self.kubeconfig = directory / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": f"https://127.0.0.1:{started['port']}", "certificate-authority": started["ca"]}}],
            "users": [{"name": "svcctl", "user": {"token": TOKEN}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "svcctl"}}],
        }))

    def do(self, op: str, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        assert "error" not in reply, reply
        return reply["ok"]

    def apply(self, *changes):
        """(type, object) pairs: ADDED, MODIFIED or DELETED."""
        return self.do("apply", events=[{"type": t, "object": o} for t, o in changes])

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ClusterAgent:
    """``svcctl run --kubeconfig`` in the node namespace; its log in a file."""

    def __init__(self, svc: Svcctl, api: ApiServer, directory: Path):
        self.lab = lab = svc.lab
        self.log_path = directory / "agent.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.netns("node"), str(SVCCTL), "run", *svc.backend_args(), "--kubeconfig", str(api.kubeconfig), *NODE_ARGS,
             "--min-sync-period", "0", "--sync-period", "1s", "--health-addr", HEALTH, "--metrics-addr", METRICS],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def metrics(self) -> str:
        out = self.lab.exec_in("client", ["/usr/bin/python3", "-I", "-c",
                                          f"import urllib.request; print(urllib.request.urlopen('http://{METRICS}/metrics', timeout=2).read().decode())"],
                                check=False)
        return out.stdout  # "" until the agent listens

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def cluster(lab, backend, tmp_path):
    """(the API server, a function that starts the agent)"""
    api = ApiServer(lab, tmp_path)
    svc = Svcctl(lab, tmp_path, backend)
    agents = []

    def start():
        agent = ClusterAgent(svc, api, tmp_path)
        agents.append(agent)
        return agent

    yield api, start
    for agent in agents:
        assert agent.close() == 0, agent.log()
    api.close()
    assert svc.delete().returncode == 0


def web(*hosts, ready=True, serving=True, terminating=False):
    return [slice_endpoint(h.ip4, ready=ready, serving=serving, terminating=terminating) for h in hosts]


def web_service(name="web", ip=WEB_IP, ports=(port(80),), **spec):
    svc = service(name, list(ports), cluster_ip=ip, **spec)
    svc["spec"].update(clusterIPs=[ip], ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", type=spec.get("type", "ClusterIP"))
    return svc


def web_slice(endpoints, name="web", triggered=None):
    """An EndpointSlice; ``triggered`` (Unix time): its last-change-trigger-time annotation."""
    obj = endpoint_slice(name, f"{name}-abcde", endpoints, [{"port": 8080, "protocol": "TCP"}])
    if triggered is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(triggered)) + f".{int(triggered % 1 * 1e9):09d}Z"
        obj["metadata"]["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": stamp}
    return obj


def test_rules_follow_added_modified_deleted(lab, cluster):
    api, start = cluster
    a, b, c = (lab.pods[p] for p in PODS)
    api.apply(("ADDED", web_service()), ("ADDED", web_slice(web(a), triggered=time.time() - 3600)))
    agent = start()
    until_answering(lab, WEB_IP, 80, {"pod-a"})
    assert "source=\"Kubernetes API https://127.0.0.1:" in agent.log()
    api.apply(("MODIFIED", web_slice(web(a, b), triggered=time.time())))
    until_answering(lab, WEB_IP, 80, {"pod-a", "pod-b"})
    # The change made while the agent runs is counted, the one from before it started is not.
    assert "svcctl_network_programming_duration_seconds_count 1.0" in agent.metrics()
    assert 'svcctl_network_programming_duration_seconds_bucket{le="1.0"} 1.0' in agent.metrics()
    api.apply(("MODIFIED", web_slice(web(a, ready=False, terminating=True) + web(c))))
    until_answering(lab, WEB_IP, 80, {"pod-c"})
    api.apply(("MODIFIED", web_service(type="NodePort", ports=[port(80, node_port=30080)])))
    until_answering(lab, lab.node.ip4, 30080, {"pod-c"})
    # A Service that takes another proxy's label leaves svcctl's rules, as with kube-proxy.
    other = web_service(type="NodePort", ports=[port(80, node_port=30080)])
    other["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "other-proxy"}
    api.apply(("MODIFIED", other))
    until_answering(lab, WEB_IP, 80, set())
    api.apply(("MODIFIED", web_service()))
    until_answering(lab, WEB_IP, 80, {"pod-c"})
    api.apply(("DELETED", web_slice(web(c))))
    until_answering(lab, WEB_IP, 80, set())
    assert lab.requests("client", WEB_IP, 80, 1, timeout=0.5)[0].error == "refused"  # no endpoints: rejected
    api.apply(("DELETED", web_service()))
    wait_for(lambda: lab.requests("client", WEB_IP, 80, 1, timeout=0.5)[0].error != "refused", "the Service's rules gone")


def test_a_dropped_watch_and_a_410_lose_no_update(lab, cluster):
    api, start = cluster
    a, b, c = (lab.pods[p] for p in PODS)
    api.apply(("ADDED", web_service()), ("ADDED", web_slice(web(a))),
              ("ADDED", web_service("api", "10.96.1.11")), ("ADDED", web_slice(web(b), "api")))
    agent = start()
    until_answering(lab, WEB_IP, 80, {"pod-a"})
    until_answering(lab, "10.96.1.11", 80, {"pod-b"})
    wait_for(lambda: api.do("watches") == 4, "four watches open")

    # The connections drop; changes meanwhile are in the history the watches resume from.
    assert api.do("drop") == 4
    api.apply(("MODIFIED", web_slice(web(a, b))))
    until_answering(lab, WEB_IP, 80, {"pod-a", "pod-b"})
    wait_for(lambda: api.do("watches") == 4, "four watches open again")

    # Dropped again, and this time the history is compacted past them: 410, list again. The
    # api Service and its slice were deleted meanwhile: the list no longer has them.
    api.do("drop")
    api.apply(("MODIFIED", web_slice(web(c))), ("DELETED", web_slice(web(b), "api")), ("DELETED", web_service("api", "10.96.1.11")))
    api.do("expire")
    until_answering(lab, WEB_IP, 80, {"pod-c"})
    wait_for(lambda: lab.requests("client", "10.96.1.11", 80, 1, timeout=0.5)[0].error != "refused", "api's rules gone")
    requests = api.do("requests")
    assert sum(1 for r in requests if r.startswith("GET /api/v1/services?") and "watch=true" not in r) == 2  # listed again once
    assert "watch expired, listing again" in agent.log()
    assert 'svcctl_api_errors_total{code="410",resource="services"}' in agent.metrics()
    assert answering(lab, WEB_IP, 80) == {"pod-c": 30}


def test_rbac_forbidden_is_one_log_line_and_a_metric_and_the_rules_stay(lab, cluster):
    api, start = cluster
    a, b, _ = (lab.pods[p] for p in PODS)
    api.apply(("ADDED", web_service()), ("ADDED", web_slice(web(a))))
    api.do("deny", resource="endpointslices", verbs=["list", "watch"])
    agent = start()
    # Without EndpointSlices nothing is synced: the agent does not take rules away it cannot
    # make again. One error line, however many retries.
    wait_for(lambda: 'svcctl_api_errors_total{code="403",resource="endpointslices"} 3.0' in agent.metrics(), "three refusals counted")
    assert "msg=sync " not in agent.log()
    refused = [line for line in agent.log().splitlines() if 'msg="Kubernetes API request refused"' in line]
    assert len(refused) == 1, agent.log()
    assert "resource=endpointslices verb=list code=403" in refused[0]
    assert 'cannot list resource \\"endpointslices\\" in API group \\"discovery.k8s.io\\"' in refused[0]

    api.do("allow", resource="endpointslices", verbs=["list", "watch"])
    wait_for(lambda: "msg=sync " in agent.log(), "the first sync", timeout=15)  # the retry comes within the backoff (up to 6.4 s by now)
    until_answering(lab, WEB_IP, 80, {"pod-a"}, n=10)
    # Taken away while running: the last good rules stay, and follow again once allowed.
    wait_for(lambda: api.do("watches") == 4, "four watches open")
    api.do("deny", resource="endpointslices", verbs=["list", "watch"])
    api.do("drop")
    api.apply(("MODIFIED", web_slice(web(b))))
    wait_for(lambda: agent.log().count('msg="Kubernetes API request refused"') == 2, "the second refusal logged")
    assert answering(lab, WEB_IP, 80) == {"pod-a": 30}
    api.do("allow", resource="endpointslices", verbs=["list", "watch"])
    wait_for(lambda: 'msg="Kubernetes API requests succeed again" resource=endpointslices' in agent.log().split('msg="Kubernetes API request refused"')[-1],
             "endpointslices read again", timeout=15)
    until_answering(lab, WEB_IP, 80, {"pod-b"}, n=10)
    assert agent.proc.poll() is None


def test_healthz_drains_a_node_going_away(lab, cluster):
    """The cluster autoscaler taints the node it will remove: /healthz (what load balancers
    probe) says 503 while the rules keep working; the taint gone, 200 again."""
    api, start = cluster
    a = lab.pods["pod-a"]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
            "status": {"addresses": [{"type": "InternalIP", "address": lab.node.ip4}]}}
    api.apply(("ADDED", web_service()), ("ADDED", web_slice(web(a))), ("ADDED", node))
    agent = start()
    until_answering(lab, WEB_IP, 80, {"pod-a"})
    status = _healthz_status(lab)
    assert status == 200, agent.log()
    tainted = {**node, "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1749000000", "effect": "NoSchedule"}]}}
    api.apply(("MODIFIED", tainted))
    wait_for(lambda: _healthz_status(lab) == 503, "/healthz 503")
    assert answering(lab, WEB_IP, 80) == {"pod-a": 30}
    api.apply(("MODIFIED", node))
    wait_for(lambda: _healthz_status(lab) == 200, "/healthz 200 again")
    # SIGTERM: exit 0 within a second or so, watches open; the rules stay.
    stopping = time.monotonic()
    assert agent.close() == 0 and time.monotonic() - stopping < 2.0
    assert answering(lab, WEB_IP, 80) == {"pod-a": 30}


def _healthz_status(lab) -> int:
    out = lab.exec_in("client", ["/usr/bin/python3", "-I", "-c",
                                 "import sys, urllib.request, urllib.error\n"
                                 f"try: print(urllib.request.urlopen('http://{HEALTH}/healthz', timeout=2).status)\n"
                                 "except urllib.error.HTTPError as e: print(e.code)\n"
                                 "except OSError: print(0)"], check=False)
    return int(out.stdout.strip() or 0)
