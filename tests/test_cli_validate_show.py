"""`svcctl validate` and `svcctl show` through the real entry point: output, exit status, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import dedent

GOOD = """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
  clusterIP: 10.96.0.50
  externalTrafficPolicy: Local
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
    nodePort: 30080
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: shop
spec:
  type: ExternalName
  externalName: db.example.com.
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: shop
  labels: {app: web}
spec:
  nodeName: node-a
  containers:
  - name: c
    ports:
    - {name: http, containerPort: 8080}
status:
  podIP: 10.244.1.5
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-2
  namespace: shop
  labels: {app: web}
  deletionTimestamp: "2024-01-01T00:00:00Z"
spec:
  nodeName: node-b
  containers:
  - name: c
    ports:
    - {name: http, containerPort: 8080}
status:
  podIP: 10.244.2.5
  conditions: [{type: Ready, status: "True"}]
"""

BAD = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
    targetPort: "8080"
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  type: LoadBalancer
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 100000
  loadBalancerSourceRanges: [10.0.0.0/40]
  ports:
  - name: a
    port: 443
  - name: a
    port: 444
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
endpoints:
- addresses: [169.254.1.1]
"""


# ---- validate ------------------------------------------------------------------------------


def test_validate_valid(write, run_cli):
    run = run_cli("validate", write(GOOD))
    assert (run.code, run.err) == (0, "")
    assert run.out == "valid: 2 Service(s), 0 Endpoints, 0 EndpointSlice(s), 2 Pod(s), 0 ServiceCIDR(s), 0 Node(s)\n"


def test_validate_verbose_says_what_was_skipped(write, run_cli):
    path = write(GOOD)
    run = run_cli("validate", "-v", path)
    assert run.code == 0
    assert run.err == f"{path}:27: skipped apps/v1/Deployment shop/web (not a kind svcctl uses)\n"
    assert run_cli("validate", path).err == ""


def test_validate_invalid_lists_every_problem(write, run_cli):
    path = write(BAD)
    run = run_cli("validate", path)
    assert run.code == 2
    assert run.out == ""
    assert "Traceback" not in run.err
    assert run.err.splitlines() == [
        f'{path}:8: Service default/web: spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)',
        f'{path}:19: Service default/api: spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 100000: must be greater than 0 and less than 86400',
        f'{path}:20: Service default/api: spec.loadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/40": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        f'{path}:24: Service default/api: spec.ports[1].name: Duplicate value: "a"',
        f'{path}:34: EndpointSlice default/api-1: endpoints[0].addresses[0]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)',
    ]


def test_validate_problems_of_several_files_and_unreadable_ones(write, run_cli, tmp_path):
    bad = write(BAD, "b.yaml")
    syntax = write("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: {a: b\n", "a.yaml")
    missing = str(tmp_path / "missing.yaml")
    run = run_cli("validate", bad, syntax, missing)
    assert run.code == 2 and "Traceback" not in run.err
    lines = run.err.splitlines()
    assert len(lines) == 7
    # sorted by file, then line
    assert lines[0] == f"{syntax}:6:1: invalid YAML: while parsing a flow mapping did not find expected ',' or '}}'"  # where the parser gave up: the end
    assert all(line.startswith(f"{bad}:") for line in lines[1:6])
    assert lines[6] == f"{missing}: no such file or directory"


def test_validate_reads_stdin(run_cli):
    run = run_cli("validate", "-", stdin=dedent(GOOD))
    assert (run.code, run.out) == (0, "valid: 2 Service(s), 0 Endpoints, 0 EndpointSlice(s), 2 Pod(s), 0 ServiceCIDR(s), 0 Node(s)\n")
    run = run_cli("validate", "-", stdin=dedent(BAD))
    assert run.code == 2
    assert run.err.splitlines()[0].startswith('-:8: Service default/web: spec.ports[0].targetPort: Invalid value: "8080"')


def test_validate_service_node_port_range(write, run_cli):
    path = write("apiVersion: v1\nkind: Service\nmetadata: {name: n}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n")
    assert run_cli("validate", "--service-node-port-range", "8000-9000", path).code == 0
    run = run_cli("validate", path)
    assert run.code == 2
    assert run.err == (
        f"{path}:6: Service default/n: spec.ports[0].nodePort: Invalid value: 8080: "
        "provided port is not in the valid range. The range of valid ports is 30000-32767\n"
    )


def test_validate_through_the_installed_command(write):
    # One real process: the console script, exit status and stderr as a user sees them.
    path = write(BAD)
    svcctl = Path(sys.executable).with_name("svcctl")
    if not svcctl.exists():
        pytest.skip("svcctl is not installed next to this Python")
    proc = subprocess.run([str(svcctl), "validate", path], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 5


# ---- show ----------------------------------------------------------------------------------


def test_show_table(write, run_cli):
    run = run_cli("show", "--node-name", "node-a", write(GOOD))
    assert (run.code, run.err) == (0, "")
    assert run.out.splitlines() == [
        "SERVICE   TYPE                  ADDRESSES        PORT                              ENDPOINTS",
        "shop/db   ExternalName          db.example.com.  -                                 -",
        "shop/web  NodePort [etp=Local]  10.96.0.50       http 80/TCP->http nodePort 30080  "
        "10.244.1.5:8080 (local) [1, local 1], 10.244.2.5:8080 (terminating, serving)",
    ]


def test_show_json(write, run_cli):
    run = run_cli("show", "--node-name", "node-b", "-o", "json", write(GOOD))
    assert (run.code, run.err) == (0, "")
    data = json.loads(run.out)
    assert [(s["namespace"], s["name"], s["type"]) for s in data] == [("shop", "db", "ExternalName"), ("shop", "web", "NodePort")]
    db, web = data
    assert db["externalName"] == "db.example.com." and db["clusterIPs"] == [] and db["ports"] == []
    assert web["clusterIPs"] == ["10.96.0.50"]
    assert web["externalTrafficPolicy"] == "Local" and web["internalTrafficPolicy"] == "Cluster"
    assert web["endpointSource"] == "Pods"
    (port,) = web["ports"]
    assert {k: port[k] for k in ("name", "protocol", "port", "targetPort", "nodePort")} == {
        "name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080,
    }
    # Cluster traffic goes to the ready endpoint; external traffic (policy Local) to this node's,
    # which is only serving and terminating: it stands in, as none of this node's is ready.
    assert port["endpoints"] == [
        {"address": "10.244.1.5", "port": 8080, "nodeName": "node-a", "zone": None, "ready": True, "serving": True, "terminating": False, "local": False,
         "probability": 1.0, "localProbability": None, "zoneHints": [], "nodeHints": [], "used": True, "topology": None},
        {"address": "10.244.2.5", "port": 8080, "nodeName": "node-b", "zone": None, "ready": False, "serving": True, "terminating": True, "local": True,
         "probability": None, "localProbability": 1.0, "zoneHints": [], "nodeHints": [], "used": True, "topology": None},
    ]
    assert port["topology"] == []


def test_show_allocates_deterministically(write, run_cli):
    path = write("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: NodePort\n  ports: [{port: 80}]\n")
    first = json.loads(run_cli("show", "--node-name", "n", "-o", "json", path).out)
    again = json.loads(run_cli("show", "--node-name", "n", "-o", "json", path).out)
    assert first == again
    (svc,) = first
    (ip,) = svc["clusterIPs"]
    assert ip.startswith("10.")
    assert 30000 <= svc["ports"][0]["nodePort"] <= 32767
    narrow = json.loads(run_cli("show", "--node-name", "n", "-o", "json", "--service-cidr", "fd00:5::/120", "--service-node-port-range", "31000-31000", path).out)
    assert narrow[0]["clusterIPs"][0].startswith("fd00:5::")
    assert narrow[0]["ports"][0]["nodePort"] == 31000


def test_show_invalid_input_exits_2(write, run_cli):
    run = run_cli("show", write(BAD))
    assert run.code == 2 and run.out == "" and "Traceback" not in run.err
    assert len(run.err.splitlines()) == 5


# ---- option errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--service-cidr", "bogus"], 'command line: service-cidr: "bogus" is not a CIDR (e.g. 10.244.0.0/16 or fd00:244::/56)'),
        (["--service-cidr", "10.0.0.0/8", "--service-cidr", "11.0.0.0/8"], "command line: service-cidr: at most one range per IP family"),
        (["--service-node-port-range", "5-3"], 'command line: service-node-port-range: "5-3" is not a port range like 30000-32767'),
        (["--service-node-port-range", "30000"], 'command line: service-node-port-range: "30000" is not a port range like 30000-32767'),
        (["--service-node-port-range", "３００００-３２７６７"], 'command line: service-node-port-range: "３００００-３２７６７" is not a port range like 30000-32767'),
        (["--node-name", "Bad_Name"], 'command line: node-name: "Bad_Name" is not a valid node name (a DNS-1123 subdomain)'),
    ],
)
def test_show_bad_options(write, run_cli, args, message):
    run = run_cli("show", *args, write(GOOD))
    assert (run.code, run.out, run.err) == (2, "", message + "\n")


def test_bad_config_files(write, run_cli, tmp_path):
    manifest = write(GOOD)
    missing = str(tmp_path / "nope.yaml")
    run = run_cli("validate", "--config", missing, manifest)
    assert (run.code, run.err) == (2, f"{missing}: cannot read config: No such file or directory\n")

    unknown = write("foo: 1\nservice-node-port-range: 30000-32767\n", "unknown.yaml")
    run = run_cli("validate", "--config", unknown, manifest)
    assert run.code == 2
    assert run.err == (
        f'{unknown}: unknown setting "foo" (known: node-name, node-zone, cluster-cidr, nodeport-addresses, masquerade-all, '
        "table, service-cidr, service-node-port-range, backend, iptables-mode)\n"
    )

    broken = write("service-cidr: [10.0.0.0/8\n", "broken.yaml")
    run = run_cli("show", "--config", broken, manifest)
    assert run.code == 2 and "Traceback" not in run.err
    assert run.err == f"{broken}:2:1: invalid YAML: while parsing a flow sequence did not find expected ',' or ']'\n"

    not_a_map = write("- a\n", "list.yaml")
    run = run_cli("show", "--config", not_a_map, manifest)
    assert (run.code, run.err) == (2, f"{not_a_map}: a config file must be a mapping of settings\n")

    run = run_cli("show", "--config", str(tmp_path), manifest)
    assert (run.code, run.err) == (2, f"{tmp_path}: cannot read config: not a regular file or a pipe\n")

    words = write("node-name: 5\nnode-zone: true\n", "words.yaml")
    run = run_cli("show", "--config", words, manifest)
    assert (run.code, run.err) == (2, f"{words}: node-name: Invalid value: 5: must be a string\n{words}: node-zone: Invalid value: true: must be a string\n")

    bad_value = write("service-cidr: nonsense\n", "value.yaml")
    run = run_cli("show", "--config", bad_value, manifest)
    assert (run.code, run.err) == (2, f'{bad_value}: service-cidr: "nonsense" is not a CIDR (e.g. 10.244.0.0/16 or fd00:244::/56)\n')


def test_config_settings_apply_and_flags_win(write, run_cli):
    manifest = write(GOOD)
    config = write("node-name: node-b\nservice-node-port-range: 30000-30050\n", "config.yaml")
    data = json.loads(run_cli("show", "--config", config, "--service-node-port-range", "30000-32767", "-o", "json", manifest).out)
    assert [e["local"] for e in data[1]["ports"][0]["endpoints"]] == [False, True]
    data = json.loads(run_cli("show", "--config", config, "--node-name", "node-a", "--service-node-port-range", "30000-32767", "-o", "json", manifest).out)
    assert [e["local"] for e in data[1]["ports"][0]["endpoints"]] == [True, False]
    # the config's node port range applies when no flag says otherwise: 30080 is outside it
    run = run_cli("validate", "--config", config, manifest)
    assert run.code == 2
    assert run.err.splitlines() == [
        f"{manifest}:16: Service shop/web: spec.ports[0].nodePort: Invalid value: 30080: "
        "provided port is not in the valid range. The range of valid ports is 30000-30050"
    ]


@pytest.mark.parametrize(
    "args, says",
    [
        (["show", "-o", "xml", "x.yaml"], "'xml' is not one of 'table', 'json', 'yaml'"),
        (["validate"], "Missing argument 'MANIFEST'"),
        (["validate", "--no-such-flag", "x.yaml"], "No such option: --no-such-flag"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args, says):
    svcctl = Path(sys.executable).with_name("svcctl")
    if not svcctl.exists():
        pytest.skip("svcctl is not installed next to this Python")
    proc = subprocess.run([str(svcctl), *args], capture_output=True, text=True, timeout=60, env={"COLUMNS": "200", "PATH": ""})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert says in proc.stderr


def test_a_long_problem_list_is_capped_unless_all_problems(run_cli, write) -> None:
    # 60 Services with an invalid name each: 60 problems, the first 50 shown and a count.
    docs = "---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: Bad_{i}}}\nspec: {{ports: [{{port: 80}}]}}\n" for i in range(60)
    )
    path = write(docs)
    capped = run_cli("validate", path)
    assert capped.code == 2
    lines = capped.err.splitlines()
    assert len(lines) == 51 and all("metadata.name" in line for line in lines[:50])
    assert lines[-1] == "svcctl: ... and 10 more problem(s) (--all-problems lists them all)"
    for flag in ("--all-problems", "-v"):
        every = run_cli("validate", path, flag)
        assert every.code == 2 and len(every.err.splitlines()) == 60, flag


def test_an_internal_error_exits_4_not_2(run_cli, write, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug (here: resolve raising) is not bad input: its own status and one line.
    import svcctl.pipeline

    def broken(*_: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(svcctl.pipeline, "resolve", broken)
    result = run_cli("show", write(GOOD), "--node-name", "n")
    assert result.code == 4
    assert result.err == "svcctl: internal error (a bug in svcctl): KeyError: 'boom' (set SVCCTL_DEBUG=1 for details)\n"


def test_show_gives_each_endpoint_its_chance(write, run_cli):
    # The same plan as the rules: three ready endpoints share the cluster traffic, the two local
    # ones the external traffic (externalTrafficPolicy Local).
    path = write("""
        apiVersion: v1
        kind: Service
        metadata: {name: lb, namespace: shop}
        spec: {type: NodePort, clusterIP: 10.96.0.60, externalTrafficPolicy: Local, ports: [{port: 80, nodePort: 30060}]}
        ---
        apiVersion: v1
        kind: Endpoints
        metadata: {name: lb, namespace: shop}
        subsets:
        - addresses: [{ip: 10.244.1.1, nodeName: node-a}, {ip: 10.244.1.2, nodeName: node-a}, {ip: 10.244.2.1, nodeName: node-b}]
          notReadyAddresses: [{ip: 10.244.1.3, nodeName: node-a}]
          ports: [{port: 8080}]
    """)
    table = run_cli("show", "--node-name", "node-a", path).out.splitlines()[1]
    assert table.endswith(
        "10.244.1.1:8080 (local) [1/3, local 1/2], 10.244.1.2:8080 (local) [1/3, local 1/2], "
        "10.244.1.3:8080 (not ready, local), 10.244.2.1:8080 [1/3]"
    ), table
    endpoints = json.loads(run_cli("show", "--node-name", "node-a", "-o", "json", path).out)[0]["ports"][0]["endpoints"]
    assert [(e["address"], e["probability"], e["localProbability"]) for e in endpoints] == [
        ("10.244.1.1", pytest.approx(1 / 3), 0.5), ("10.244.1.2", pytest.approx(1 / 3), 0.5), ("10.244.1.3", None, None), ("10.244.2.1", pytest.approx(1 / 3), None),
    ]


@pytest.mark.parametrize("command", ["validate", "show", "compile", "apply", "diff", "delete", "dns", "trace"])
def test_help_reads_like_a_unix_tools(command, run_cli) -> None:
    """Values named by what they are (CIDR, NAME, FILE, MANIFEST), not by Python types; examples
    and exit statuses in every command's help."""
    result = run_cli(command, "--help")
    assert result.code == 0
    assert "<list[" not in result.out and "<str>" not in result.out and "<bool>" not in result.out and "{" not in result.out.splitlines()[0]
    assert "Examples:\n" in result.out and "Exit status:" in result.out
    if command != "delete":
        assert result.out.startswith(f"Usage: svcctl {command} [OPTIONS] MANIFEST...")
    if command in ("compile", "apply", "diff", "trace"):
        for metavar in ("--cluster-cidr CIDR", "--node-name NAME", "--config FILE", "--service-node-port-range FIRST-LAST"):
            assert metavar in result.out, metavar


def test_version(run_cli) -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert (result.code, result.out) == (0, f"svcctl {version('svcctl')}\n")


def test_shell_completion_is_offered(run_cli) -> None:
    result = run_cli("--help")
    assert "--install-completion" in result.out and "--show-completion" in result.out


def test_a_hostile_config_file_is_one_line_like_a_manifest(write, run_cli, tmp_path):
    manifest = write(GOOD)
    deep = write("cluster-cidr: " + "[" * 50_000 + "\n", "deep.yaml")
    run = run_cli("validate", "--config", deep, manifest)
    assert (run.code, run.err) == (2, f"{deep}:1:1014: invalid YAML: nested deeper than 1000 levels\n")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"node-name: n\xe9\n")
    run = run_cli("validate", "--config", str(latin1), manifest)
    assert (run.code, run.err) == (2, f"{latin1}:1:13: invalid UTF-8: byte 0xe9 (manifests are UTF-8 text)\n")
    run = run_cli("validate", "--config", "/dev/zero", manifest)
    assert (run.code, run.err) == (2, "/dev/zero: cannot read config: not a regular file or a pipe\n")


def test_show_as_yaml_is_the_json_data(write, run_cli) -> None:
    import yaml

    path = write(GOOD)
    as_json = json.loads(run_cli("show", "-o", "json", "--node-name", "node-a", path).out)
    as_yaml = run_cli("show", "-o", "yaml", "--node-name", "node-a", path)
    assert as_yaml.code == 0 and yaml.safe_load(as_yaml.out) == as_json
    assert as_yaml.out.startswith("- namespace: shop\n  name: db\n")


def test_a_file_named_twice_is_read_once(write, run_cli, tmp_path) -> None:
    """By its directory and by its path (or two spellings of it): its objects are not each
    other's duplicates; the output is that of the file alone."""
    path = write(GOOD, "dir/m.yaml")
    alone = run_cli("show", "-o", "json", "--node-name", "node-a", path)
    twice = run_cli("show", "-o", "json", "--node-name", "node-a", str(tmp_path / "dir"), path, str(tmp_path / "dir" / ".." / "dir" / "m.yaml"))
    assert (twice.code, twice.err, twice.out) == (0, "", alone.out) and alone.out
