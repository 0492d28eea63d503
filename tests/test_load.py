"""Reading manifests: every input form, and where each object and field stands."""

from __future__ import annotations

import json

import pytest

from conftest import dedent, inventory_of, problems_of

from svcctl.sources import load

SVC = """
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  ports:
  - port: 80
"""


def names(objects) -> list[str]:
    return [o.data["metadata"]["name"] for o in objects]


def test_single_file(write):
    objects, problems = load([write(SVC.format(name="a"))])
    assert problems == []
    assert names(objects) == ["a"]
    assert objects[0].origin.line == 1


def test_directory_is_read_sorted_and_only_manifest_suffixes(tmp_path, write):
    write(SVC.format(name="from-c"), "d/c.yml")
    write(SVC.format(name="from-a"), "d/a.yaml")
    write('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "from-b"}, "spec": {"ports": [{"port": 1}]}}', "d/b.json")
    write(SVC.format(name="ignored"), "d/notes.txt")
    write(SVC.format(name="ignored2"), "d/x.yaml.bak")
    objects, problems = load([str(tmp_path / "d")])
    assert problems == []
    assert names(objects) == ["from-a", "from-b", "from-c"]


def test_empty_directory_and_missing_file_are_problems(tmp_path):
    (tmp_path / "empty").mkdir()
    _, problems = load([str(tmp_path / "empty"), str(tmp_path / "nope.yaml")])
    assert [p.render() for p in problems] == [
        f"{tmp_path / 'empty'}: directory holds no *.yaml, *.yml or *.json file",
        f"{tmp_path / 'nope.yaml'}: no such file or directory",
    ]


def test_stdin_yaml(monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(dedent(SVC.format(name="a")) + "---\n" + dedent(SVC.format(name="b"))))
    objects, problems = load(["-"])
    assert problems == []
    assert names(objects) == ["a", "b"]
    assert objects[1].origin.source.name == "-"
    assert objects[1].origin.line == 9


def test_stdin_json(monkeypatch):
    import io
    import sys

    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j"}, "spec": {"ports": [{"port": 80}]}}
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n  " + json.dumps(doc, indent=4)))
    objects, problems = load(["-"])
    assert problems == []
    assert names(objects) == ["j"]
    assert objects[0].origin.source.is_json
    assert objects[0].origin.line == 2


def test_many_documents_and_empty_documents(write):
    text = "---\n" + dedent(SVC.format(name="a")) + "---\n---\n# only a comment\n---\n" + dedent(SVC.format(name="b")) + "---\n"
    objects, problems = load([write(text)])
    assert problems == []
    assert names(objects) == ["a", "b"]
    assert [o.origin.line for o in objects] == [2, 13]


def test_kind_list_items(write):
    path = write(
        """
        apiVersion: v1
        kind: List
        metadata:
          resourceVersion: ""
        items:
        - apiVersion: v1
          kind: Service
          metadata:
            name: one
          spec:
            ports:
            - port: 80
        - apiVersion: v1
          kind: Pod
          metadata:
            name: two
        """
    )
    objects, problems = load([path])
    assert problems == []
    assert [(o.data["kind"], o.data["metadata"]["name"], o.origin.line) for o in objects] == [
        ("Service", "one", 6),
        ("Pod", "two", 13),
    ]


def test_typed_list_items_get_kind_and_api_version(write):
    path = write(
        """
        apiVersion: v1
        kind: ServiceList
        items:
        - metadata:
            name: one
          spec:
            ports:
            - port: 80
        - metadata:
            name: two
          spec:
            clusterIP: None
        """
    )
    inv = inventory_of(path)
    assert [(e.obj.kind, e.obj.api_version, e.obj.metadata.name) for e in inv.services] == [
        ("Service", "v1", "one"),
        ("Service", "v1", "two"),
    ]


def kubectl_json(indent) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "items": [
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}},
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "b", "namespace": "ns"},
                    "spec": {"ports": [{"name": "p", "port": 80}, {"name": "q", "port": 0}]},
                },
            ],
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        },
        indent=indent,
    ) + "\n"


@pytest.mark.parametrize("indent", [4, "\t"], ids=["spaces", "tabs"])
def test_json_as_kubectl_prints_it(write, indent):
    text = kubectl_json(indent)
    path = write(text, "list.json")
    lines = text.splitlines()
    assert lines[3].strip() == "{" and lines[18].strip() == "{"  # where the two items open
    objects, problems = load([path])
    assert problems == []
    assert names(objects) == ["a", "b"]
    assert [o.origin.line for o in objects] == [4, 19]
    q_item = next(i for i, line in enumerate(lines, 1) if '"name": "q"' in line) - 1  # the "{" before it
    assert problems_of(path) == [
        # the API server defaults targetPort to port, so a bad port makes a bad targetPort too
        f"{path}:{q_item}: Service ns/b: spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        f"{path}:{q_item + 2}: Service ns/b: spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    ]


def test_unknown_kinds_are_skipped_not_errors(write):
    path = write(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec: {replicas: 3}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: ing
          namespace: x
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports:
          - port: 80
        """
    )
    inv = inventory_of(path)
    assert [e.obj.metadata.name for e in inv.services] == ["web"]
    assert [(what, origin.line) for what, origin in inv.skipped] == [
        ("apps/v1/Deployment default/web", 1),
        ("networking.k8s.io/v1/Ingress x/ing", 7),
    ]


def test_yaml_syntax_error_is_file_and_line(write):
    path = write(dedent(SVC.format(name="a")) + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [b\n")
    objects, problems = load([path])
    assert objects == []
    assert len(problems) == 1
    line = problems[0].render()
    assert line.startswith(f"{path}:13: invalid YAML: ")


def test_json_syntax_error_is_file_and_line(write):
    path = write('{\n  "apiVersion": "v1",\n  "kind": "Service"\n  "metadata": {}\n}\n', "bad.json")
    _, problems = load([path])
    assert [p.render() for p in problems] == [f"{path}:4: invalid JSON: Expecting ',' delimiter (column 3)"]


def test_trailing_tab_quirk_is_accepted(write):
    # Go's YAML parser (kubectl) accepts a TAB after a value; PyYAML alone does not.
    path = write("apiVersion: v1\nkind: Service\nmetadata:\n  name: tabbed\t\nspec:\n  ports:\n  - port: 80\t\n    protocol: UDP\n")
    inv = inventory_of(path)
    svc = inv.services[0].obj
    assert svc.metadata.name == "tabbed"
    assert (svc.spec.ports[0].port, svc.spec.ports[0].protocol.value) == (80, "UDP")


def test_a_document_that_is_not_a_mapping(write):
    path = write("- just\n- a list\n")
    _, problems = load([path])
    assert [p.render() for p in problems] == [
        f"{path}:1: a manifest must be a mapping (an object with apiVersion and kind)"
    ]


THREE_DOCS = """
apiVersion: v1
kind: Service
metadata:
  name: first
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Endpoints
metadata:
  name: first
subsets: []
---
apiVersion: v1
kind: Service
metadata:
  name: third
  namespace: prod
spec:
  ports:
  - name: ok
    port: 80
  - name: bad
    protocol: UDP
    port: 99999
"""


def test_line_of_a_field_in_the_third_yaml_document(write):
    path = write(THREE_DOCS)
    assert problems_of(path) == [
        f"{path}:24: Service prod/third: spec.ports[1].targetPort: Invalid value: 99999: must be between 1 and 65535, inclusive",
        f"{path}:26: Service prod/third: spec.ports[1].port: Invalid value: 99999: must be between 1 and 65535, inclusive",
    ]


def test_line_of_a_field_in_the_third_json_document(write):
    docs = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "first"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "first"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "third", "namespace": "prod"},
            "spec": {"ports": [{"name": "ok", "port": 80}, {"name": "bad", "port": "80"}]},
        },
    ]
    text = "\n".join(json.dumps(d, indent=2) for d in docs) + "\n"
    path = write(text, "three.json")
    lines = text.splitlines()
    expected_line = next(i for i, line in enumerate(lines, 1) if '"port": "80"' in line)
    assert problems_of(path) == [
        f'{path}:{expected_line}: Service prod/third: spec.ports[1].port: Invalid value: "80": must be an integer',
    ]


def test_line_of_a_missing_field_is_its_parent(write):
    path = write(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: x
        spec:
          type: ExternalName
        """
    )
    assert problems_of(path) == [f"{path}:5: Service default/x: spec.externalName: Required value"]


def test_a_key_given_twice_in_yaml_is_refused_as_kubectl_does(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\nspec:\n  ports: [{port: 80}]\n")
    objects, problems = load([str(path)])
    assert objects == []
    assert [p.render() for p in problems] == [f'{path}:5: invalid YAML: key "name" already set in map']
