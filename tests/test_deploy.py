"""deploy/daemonset.yaml, read with svcctl's own loader and checked against a schema of the API's
fields (tests/deploy/schema.json), and against svcctl itself: RBAC grants exactly get, list and
watch on exactly what ``svcctl run`` watches; the command's flags exist; the ConfigMap's node
options are valid svcctl settings; the probe asks the port /healthz answers on; every
ConfigMap key the pod reads is there. deploy/Containerfile installs what the agent needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from svcctl.agent.kube import watched
from svcctl.load import Source, parse_source
from svcctl.options import build_options
from svcctl.sources import read_manifest_file

DEPLOY = Path(__file__).parent.parent / "deploy"
SCHEMA = json.loads((Path(__file__).parent / "deploy" / "schema.json").read_text())


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    source = read_manifest_file(str(DEPLOY / "daemonset.yaml"))
    assert isinstance(source, Source), source.render()
    raw, problems = parse_source(source)
    assert problems == [], [p.render() for p in problems]
    return {o.data["kind"]: o.data for o in raw}


def test_the_objects_and_their_fields(objects) -> None:
    assert sorted(objects) == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"]
    for obj in objects.values():
        jsonschema.validate(obj, SCHEMA)


def test_the_schema_catches_a_misspelt_field(objects) -> None:
    spec = json.loads(json.dumps(objects["DaemonSet"]))
    spec["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(jsonschema.ValidationError, match="hostNetwrok"):
        jsonschema.validate(spec, SCHEMA)


def test_rbac_is_get_list_watch_on_what_svcctl_watches(objects) -> None:
    granted = {(group, resource, tuple(sorted(rule["verbs"]))) for rule in objects["ClusterRole"]["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {(r.group, r.plural, ("get", "list", "watch")) for r in watched("node")}
    binding = objects["ClusterRoleBinding"]
    account = objects["ServiceAccount"]["metadata"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}]
    assert objects["DaemonSet"]["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]


def test_the_pod(objects, run_cli) -> None:
    daemonset = objects["DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    assert daemonset["spec"]["selector"]["matchLabels"].items() <= daemonset["spec"]["template"]["metadata"]["labels"].items()
    assert pod["hostNetwork"] is True and pod["tolerations"] == [{"operator": "Exists"}]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:3] == ["svcctl", "run", "--in-cluster"]
    help_text = run_cli("run", "--help").out
    for flag in (a for a in command if a.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", help_text), flag
    # The node name from the downward API, handed to --node-name.
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert command[command.index("--node-name") + 1] == "$(NODE_NAME)"
    # --in-cluster's API server, from ConfigMap keys that exist.
    config = objects["ConfigMap"]
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        ref = env[name]["valueFrom"]["configMapKeyRef"]
        assert ref["name"] == config["metadata"]["name"] and ref["key"] in config["data"]
    # The liveness probe asks /healthz where --health-addr serves it.
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and command[command.index("--health-addr") + 1].endswith(f":{probe['port']}")
    # Only the capabilities nftables and conntrack need.
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]} and security["privileged"] is False
    assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    # The config file is the ConfigMap's config.yaml, mounted where --config reads it.
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert command[command.index("--config") + 1] == f"{mount['mountPath']}/{volume['configMap']['items'][0]['path']}"


def test_the_node_options_are_valid_settings(objects) -> None:
    text = objects["ConfigMap"]["data"]["config.yaml"]
    options = build_options({}, Source("config.yaml", text, False), "node-1")
    assert options.cluster_cidrs and options.service_cidrs and options.backend == "nftables"


def test_the_containerfile_installs_what_the_agent_needs() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^FROM \S*debian:12", text, re.M)
    for package in ("nftables", "python3-nftables", "iptables", "conntrack", "python3-venv"):
        assert re.search(rf"\s{re.escape(package)}\s", text), package
    assert "--system-site-packages" in text
