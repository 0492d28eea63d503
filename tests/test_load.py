"""Reading manifests: every input form, and where each object and field stands."""

from __future__ import annotations

import io
import json


import os
import subprocess
import sys
import time

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


NESTED = """
    apiVersion: v1
    kind: List
    items:
    - apiVersion: v1
      kind: List
      items:
      - apiVersion: v1
        kind: Service
        metadata: {name: inner}
    - apiVersion: v1
      kind: Service
      metadata: {name: outer}
    """


@pytest.mark.parametrize("as_json", [False, True])
def test_lists_inside_a_list_are_flattened_as_kubectl_does(write, as_json):
    """kubectl's builder flattens Lists inside Lists; their items are located at the inner List
    (line 4 in YAML), on the exact path and on JSON's fast one alike."""
    import yaml

    text = json.dumps(yaml.safe_load(dedent(NESTED)), indent=2) if as_json else NESTED
    path = write(text, "nested.json" if as_json else "nested.yaml")
    objects, problems = load([path])
    assert problems == []
    assert [(o.data["metadata"]["name"], o.origin.line) for o in objects] == [("inner", 5 if as_json else 4), ("outer", 18 if as_json else 10)]


def test_a_list_named_again_by_an_alias_is_expanded_once(write):
    """A List holding itself, and Lists of aliases to Lists of aliases (each level ten times the
    last: a million objects from a few hundred bytes): each List's items are read once."""
    cycle = write("apiVersion: v1\nkind: List\nitems:\n- &a {apiVersion: v1, kind: List, items: [*a]}\n", "cycle.yaml")
    objects, problems = load([cycle])
    assert objects == [] and [p.render() for p in problems] == [f"{cycle}:4: a List that is given again by a YAML alias: its items are read once"]
    levels = ["apiVersion: v1", "kind: List", "items:", "- &l0 {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: Service, metadata: {name: s}}]}"]
    levels += [f"- &l{d} {{apiVersion: v1, kind: List, items: [{', '.join([f'*l{d - 1}'] * 10)}]}}" for d in range(1, 7)]
    objects, problems = load([write("\n".join(levels) + "\n", "aliases.yaml")])
    assert [o.data["metadata"]["name"] for o in objects] == ["s"] and len(problems) == 60


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
    # one line, FILE:LINE:COLUMN (PyYAML's own text adds a second: in "<unicode string>", ...)
    assert [p.render() for p in problems] == [
        f"{path}:13:1: invalid YAML: while parsing a flow sequence did not find expected ',' or ']'"
    ]


def test_json_syntax_error_is_file_and_line(write):
    path = write('{\n  "apiVersion": "v1",\n  "kind": "Service"\n  "metadata": {}\n}\n', "bad.json")
    _, problems = load([path])
    assert [p.render() for p in problems] == [f"{path}:4:3: invalid JSON: Expecting ',' delimiter"]


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
    assert [p.render() for p in problems] == [f'{path}:5:3: invalid YAML: key "name" already set in map']


# ---- hostile input: every one a problem at FILE:LINE:COLUMN, never a crash -----------------

DEEP = 50_000


@pytest.mark.parametrize(
    "text, where",
    [
        ("selector: " + "[" * DEEP + "]" * DEEP + "\n", "1:1010"),  # the mapping is level 1
        ("a: " + "{" * DEEP + "}" * DEEP + "\n", "1:1003"),
        ("a: " + "[" * DEEP + "\n", "1:1003"),  # unclosed: the depth is found before the syntax error
        ("a:\n" + "- " * DEEP + "x\n", "2:1999"),  # compact block sequences, two columns a level
        ("".join(" " * i + f"k{i}:\n" for i in range(1200)), "1001:1001"),  # one column a level
    ],
    ids=["flow-sequences", "flow-mappings", "unclosed", "block-sequences", "block-mappings"],
)
def test_yaml_nested_deeper_than_the_limit_is_one_problem_not_a_segfault(tmp_path, text, where):
    # libyaml's composer recurses on the C stack: at ~30,000 levels the process died (exit 139).
    # A real process, so that a regression fails this test instead of killing the test run.
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-c", "from svcctl.cli import main; main()", "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (2, f"{path}:{where}: invalid YAML: nested deeper than 1000 levels\n")


def test_nesting_up_to_the_limit_is_read(write):
    path = write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: " + "[" * 998 + "]" * 998 + "\n")
    objects, problems = load([path])
    assert problems == [] and len(objects) == 1


@pytest.mark.parametrize(
    "text, where",
    [
        ('{"a": ' + "[" * DEEP + "]" * DEEP + "}", "1:1006"),
        ('{"a": ' + "[" * DEEP, "1:1006"),
        ('{"kind": "x", "kind": "y", "a": ' + "[" * DEEP + "]" * DEEP + "}", "1:1032"),  # too deep to look for the key
    ],
    ids=["closed", "unclosed", "with-a-duplicate-key"],
)
def test_json_nested_too_deep_is_one_problem(write, text, where):
    path = write(text, "deep.json")
    objects, problems = load([path])
    assert objects == []
    assert [p.render() for p in problems] == [
        f"{path}:{where}: invalid JSON: nested too deep (Python's JSON decoder stops at about 1000 levels)"
    ]


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("big.json", '{"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": ' + "9" * 5000 + "}]}}", "1:69"),
        # digits in a string, and a long float, are no integer to convert
        ("str.json", '{"a": "' + "1" * 5000 + '", "b": 1' + "0" * 5000 + '.5, "c": -' + "7" * 4301 + "}", "1:10026"),
        ("big.yaml", "spec:\n  ports: [{port: " + "9" * 5000 + "}]\n", "2:18"),
        ("hex.yaml", "port: 0x" + "f" * 5000 + "\n", "1:7"),  # int() has no limit for base 16; str() has
        ("sexagesimal.yaml", "port: " + ":".join(["59"] * 3000) + "\n", "1:7"),
    ],
)
def test_integers_python_will_not_convert_are_one_problem(write, name, text, where):
    path = write(text, name)
    _, problems = load([path])
    what = "JSON" if name.endswith(".json") else "YAML"
    assert [p.render() for p in problems] == [f"{path}:{where}: invalid {what}: integer with more than 4300 digits"]


def test_a_key_given_twice_in_json_is_refused_like_in_yaml(write):
    top = write('{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  "metadata": {"name": "a"},\n  "kind": "Service"\n}\n', "top.json")
    nested = write('{"apiVersion": "v1", "kind": "List", "items": [\n {"kind": "Service",\n  "spec": {"type": "NodePort", "type": "ClusterIP"}}]}\n', "nested.json")
    _, problems = load([top, nested])
    assert [p.render() for p in problems] == [
        f'{top}:5:3: invalid JSON: key "kind" already set in map',
        f'{nested}:3:32: invalid JSON: key "type" already set in map',
    ]


def test_yaml_keys_become_strings_as_kubectl_makes_them(write):
    path = write("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels: {80: x, true: y}\nspec:\n  ports: [{port: 80}]\n")
    objects, problems = load([path])
    assert problems == []
    assert objects[0].data["metadata"]["labels"] == {"80": "x", "true": "y"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("labels: {null: x}\n", "1:10: invalid YAML: unsupported mapping key null: keys are strings, integers or booleans"),
        ("labels: {1.5: x}\n", "1:10: invalid YAML: unsupported mapping key 1.5: keys are strings, integers or booleans"),
        ('labels: {1: x, "1": y}\n', '1:16: invalid YAML: key "1" already set in map'),
    ],
)
def test_yaml_keys_json_cannot_have_are_refused(write, text, message):
    path = write(text)
    _, problems = load([path])
    assert [p.render() for p in problems] == [f"{path}:{message}"]


def test_yaml_types_json_has_not_are_read_as_kubectl_reads_them(write):
    path = write("a: !!binary aGVsbG8=\nb: !!set {x, y}\nc: !!omap [k: 1, l: 2]\nd: 2024-01-01\n")
    objects, _ = load([path])
    assert objects[0].data == {"a": "hello", "b": {"x": None, "y": None}, "c": [{"k": 1}, {"l": 2}], "d": "2024-01-01"}


def test_a_control_character_is_one_line_at_its_place(write):
    path = write("apiVersion: v1\nkind: Sé\x00rvice\n")
    _, problems = load([path])
    assert [p.render() for p in problems] == [f"{path}:2:9: invalid YAML: unacceptable character #x0000: control characters are not allowed"]


def test_invalid_utf8_is_one_problem_at_its_place(tmp_path, monkeypatch):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Service\nmetadata:\n  name: caf\xe9\n")
    _, problems = load([str(path)])
    assert [p.render() for p in problems] == [f"{path}:4:12: invalid UTF-8: byte 0xe9 (manifests are UTF-8 text)"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"kind: Service\n\xff\xfe\n")))
    _, problems = load(["-"])
    assert [p.render() for p in problems] == ["-:2:1: invalid UTF-8: byte 0xff (manifests are UTF-8 text)"]


def test_a_byte_order_mark_is_allowed(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + dedent(SVC.format(name="a")).encode())
    objects, problems = load([str(path)])
    assert problems == [] and names(objects) == ["a"]


def test_an_empty_argument_is_a_problem_not_the_current_directory(tmp_path, monkeypatch, write):
    write(SVC.format(name="here"))
    monkeypatch.chdir(tmp_path)
    objects, problems = load([""])
    assert objects == []
    assert [p.render() for p in problems] == ['"": empty argument: a manifest is a file, a directory or - for standard input']


def test_devices_are_refused_and_pipes_are_read(tmp_path):
    read_end, write_end = os.pipe()  # what `svcctl validate <(kubectl get ...)` reads
    os.write(write_end, dedent(SVC.format(name="piped")).encode())
    os.close(write_end)
    try:
        objects, problems = load(["/dev/zero", f"/dev/fd/{read_end}"])
    finally:
        os.close(read_end)
    assert names(objects) == ["piped"]
    assert [p.render() for p in problems] == ["/dev/zero: not a regular file or a pipe (use - for standard input)"]


def test_a_named_pipe_without_a_writer_does_not_block(tmp_path, monkeypatch):
    import svcctl.sources

    monkeypatch.setattr(svcctl.sources, "PIPE_WAIT", 0.2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    _, problems = load([str(fifo)])
    assert time.monotonic() - started < 5
    assert [p.render() for p in problems] == [f"{fifo}: a pipe no writer opened within 0.2 s"]


def test_input_is_read_up_to_a_bound(tmp_path, write, monkeypatch):
    import svcctl.sources

    monkeypatch.setattr(svcctl.sources, "MAX_INPUT_BYTES", 1 << 20)
    small = write(SVC.format(name="a"), "a.yaml")
    big = write(SVC.format(name="b") + "#" * (1 << 20), "b.yaml")  # together more than 1 MiB
    objects, problems = load([small, big])
    assert names(objects) == ["a"]
    assert [p.render() for p in problems] == [f"{big}: larger than the 1 MiB svcctl reads in one run (all manifests together)"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * (2 << 20))))  # endless, as far as it goes
    assert [p.render() for p in load(["-"])[1]] == ["-: larger than the 1 MiB svcctl reads in one run (all manifests together)"]


def test_a_file_name_that_cannot_be_shown_is_quoted(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "evil\n\x1b[31m.yaml").write_text("kind: [a\n")
    _, problems = load([str(folder)])
    assert [p.render() for p in problems] == [f'"{folder}/evil\\n\\x1b[31m.yaml":2:1: invalid YAML: while parsing a flow sequence did not find expected \',\' or \']\'']


def test_the_problems_of_one_object_are_located_in_linear_time(write):
    # 4000 invalid ports: 12,000 problems. Composing the object once per problem took 10 minutes.
    ports = "".join(f"  - {{name: p{i}, port: 0}}\n" for i in range(4000))
    path = write("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n" + ports)
    started = time.monotonic()
    lines = problems_of(path)
    assert time.monotonic() - started < 5
    assert len(lines) == 3 * 4000 - 1  # port, targetPort; and every port after the first a duplicate
    assert lines[-1] == f"{path}:4006: Service default/s: spec.ports[3999].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"


def test_problems_in_a_minified_dump_are_located_without_rescanning_its_one_line(write):
    # `kubectl get -o json | jq -c`: every item on line 1. Blanking out what precedes an item on
    # its line made locating each problem compose megabytes of blanks first (here: ~12 s).
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"blob": "x" * (6 << 20)}}
    bad = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"Bad_{i}"}, "spec": {"ports": [{"port": 80}]}} for i in range(400)]
    path = write(json.dumps({"apiVersion": "v1", "kind": "List", "items": [big, *bad]}), "minified.json")
    started = time.monotonic()
    lines = problems_of(path)
    assert time.monotonic() - started < 5
    assert len(lines) == 400 and all(line.startswith(f"{path}:1: Service default/Bad_") for line in lines)
