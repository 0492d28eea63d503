"""Real published manifests (../shared/corpus, read in place): valid ones validate and show,
invalid ones are refused with one line per problem and no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is not at {CORPUS} (it lives next to the repository)")


def files(folder: str) -> list[Path]:
    path = CORPUS / folder
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []


# Files in valid/ that the API server would refuse all the same, and why. Each entry lists the
# problems svcctl must report for it (regular expressions; every line must match one, and each
# must match a line), so the list fails loudly when a reason stops applying or a new one appears.
KNOWN_EXCEPTIONS: dict[str, tuple[str, list[str]]] = {
    "traefik__pkg__provider__kubernetes__crd__fixtures__services.yml": (
        "several Services reuse one clusterIP, which the API server's allocator refuses; "
        "one uses an IPv6 address as externalName, which is not a DNS-1123 subdomain",
        [
            r':220: Service default/external-svc-with-ipv6: spec\.externalName: Invalid value: "2001:db8:85a3:8d3:1319:8a2e:370:7347": a lowercase RFC 1123 subdomain',
            r':\d+: Service default/native-disabled-svc: spec\.clusterIPs\[0\]: Invalid value: "10\.10\.0\.1": provided IP is already allocated \(to Service default/native-svc\)$',
            r':\d+: Service default/nodeport-svc: spec\.clusterIPs\[0\]: Invalid value: "10\.10\.0\.1": provided IP is already allocated \(to Service default/native-svc\)$',
        ],
    ),
    "traefik__pkg__provider__kubernetes__ingress-nginx__fixtures__services.yml": (
        "Services reuse clusterIPs, and an EndpointSlice has an endpoint with an empty addresses list",
        [
            r":\d+: EndpointSlice default/empty: endpoints\[0\]\.addresses: Required value: must contain at least 1 address$",
            r':\d+: Service default/whoami-nil-port-name: spec\.clusterIPs\[0\]: Invalid value: "10\.10\.10\.2": provided IP is already allocated \(to Service default/whoami-tls\)$',
            r':\d+: Service default/whoami-nil-port-value: spec\.clusterIPs\[0\]: Invalid value: "10\.10\.10\.3": provided IP is already allocated \(to Service default/whoami-b\)$',
        ],
    ),
    "traefik__pkg__provider__kubernetes__ingress__fixtures__Ingress-with-IPv6-endpoints.yml": (
        "an IPv6 address as externalName, which the API server's DNS-1123 subdomain check refuses",
        [r':\d+: Service testing/service-foo: spec\.externalName: Invalid value: "2001:0db8:3c4d:0015:0000:0000:1a2f:2a3b": a lowercase RFC 1123 subdomain'],
    ),
}

VALID = files("valid")
INVALID = files("invalid")


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def assert_clean_failure(run, path: Path) -> list[str]:
    assert run.code == 2, run.out + run.err
    assert "Traceback" not in run.err
    lines = run.err.splitlines()
    assert lines, "exit 2 without saying why"
    for line in lines:
        assert line.startswith(f"{path}:"), line  # FILE[:LINE]: ...
    return lines


@pytest.mark.parametrize("path", VALID, ids=ids(VALID))
def test_valid_corpus_file(path: Path, run_cli):
    run = run_cli("validate", str(path))
    if path.name not in KNOWN_EXCEPTIONS:
        assert (run.code, run.err) == (0, ""), run.err
        assert re.fullmatch(r"valid: \d+ Service\(s\), \d+ Endpoints, \d+ EndpointSlice\(s\), \d+ Pod\(s\), \d+ ServiceCIDR\(s\), \d+ Node\(s\)\n", run.out)
        return
    _, patterns = KNOWN_EXCEPTIONS[path.name]
    lines = assert_clean_failure(run, path)
    for line in lines:
        assert any(re.search(p, line) for p in patterns), f"a new problem, not a known exception: {line}"
    for pattern in patterns:
        assert any(re.search(pattern, line) for line in lines), f"known exception no longer reported: {pattern}"


def test_known_exceptions_exist():
    for name in KNOWN_EXCEPTIONS:
        assert (CORPUS / "valid" / name).is_file(), name


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_corpus_file(path: Path, run_cli):
    assert_clean_failure(run_cli("validate", str(path)), path)


@pytest.mark.parametrize("path", [p for p in VALID if p.name not in KNOWN_EXCEPTIONS], ids=ids([p for p in VALID if p.name not in KNOWN_EXCEPTIONS]))
def test_show_runs_on_valid_corpus_file(path: Path, run_cli):
    table = run_cli("show", "--node-name", "node-1", str(path))
    assert (table.code, table.err) == (0, ""), table.err
    assert table.out.startswith("SERVICE")
    data = json.loads(run_cli("show", "--node-name", "node-1", "-o", "json", str(path)).out)
    assert isinstance(data, list)
    # every Service row of the table is in the JSON too
    assert len(data) == sum(1 for line in table.out.splitlines()[1:] if line[:1] not in (" ", ""))


def test_kube_router_services_with_their_pods(run_cli):
    services = CORPUS / "valid" / "kube-router__testdata__ipset_test_1__services.yaml"
    pods = CORPUS / "companions" / "kube-router__testdata__ipset_test_1__pods.yaml"
    if not pods.is_file():
        pytest.skip(f"{pods} is missing")
    run = run_cli("validate", str(services), str(pods))
    assert (run.code, run.out) == (0, "valid: 6 Service(s), 0 Endpoints, 0 EndpointSlice(s), 2 Pod(s), 0 ServiceCIDR(s), 0 Node(s)\n")
    run = run_cli("show", "--node-name", "kube-router-vm2", "-o", "json", str(services), str(pods))
    assert run.code == 0, run.err
    by_name = {s["name"]: s for s in json.loads(run.out)}
    whoami = by_name["whoami"]
    assert whoami["endpointSource"] == "Pods"
    assert whoami["clusterIPs"] == ["10.96.243.193", "2001:db8:42:1::bd90"]
    assert whoami["externalIPs"] == ["10.243.0.1"]
    # The pods have no Ready condition: endpoints, but not ready; one per pod IP (dual-stack).
    endpoints = whoami["ports"][0]["endpoints"]
    assert [(e["address"], e["port"], e["nodeName"], e["ready"], e["serving"], e["local"]) for e in endpoints] == [
        ("10.242.0.5", 5000, "kube-router-vm1", False, False, False),
        ("10.242.1.4", 5000, "kube-router-vm2", False, False, True),
        ("2001:db8:42:1000::5", 5000, "kube-router-vm1", False, False, False),
        ("2001:db8:42:1001::4", 5000, "kube-router-vm2", False, False, True),
    ]
    # blank-service selects no pod in the input
    assert by_name["blank-service"]["endpointSource"] == "Pods"
    assert by_name["blank-service"]["ports"][0]["endpoints"] == []
