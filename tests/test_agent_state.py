"""The agent's inventory (svcctl.agent.state): bad input never takes away what good input gave."""

from __future__ import annotations

from svcctl.agent.source import Gone, Put
from svcctl.agent.state import Key, State


def svc(name: str, ip: str, port: int = 80, node_port: int | None = None) -> str:
    kind = "NodePort" if node_port else "ClusterIP"
    extra = f", nodePort: {node_port}" if node_port else ""
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: {kind}\n  clusterIP: {ip}\n  ports: [{{port: {port}, targetPort: 8080{extra}}}]\n"


def put(origin: str, *docs: str) -> Put:
    return Put(origin, "---\n".join(docs), False)


def accepted(state: State) -> dict[str, int]:
    """Service name -> its port, for the accepted Services."""
    return {k.name: e.obj.spec.ports[0].port for k, e in state.objects.items() if k.kind == "Service"}


def lines(state: State) -> list[str]:
    return sorted(p.render() for p in state.problems())


def test_a_file_that_does_not_parse_keeps_its_last_good_objects() -> None:
    state = State()
    state.apply([put("a.yaml", svc("a", "10.96.0.1"))])
    changes = state.apply([put("a.yaml", svc("a", "10.96.0.1", 81) + "  bad: [")])
    assert changes == {} and accepted(state) == {"a": 80}
    assert lines(state) == ["a.yaml:9:1: invalid YAML: while parsing a flow node did not find expected node content"]
    changes = state.apply([put("a.yaml", svc("a", "10.96.0.1", 81))])
    assert list(changes) == [Key("Service", "default", "a")] and accepted(state) == {"a": 81} and lines(state) == []


def test_an_invalid_object_keeps_its_last_good_version_and_its_neighbours_are_taken() -> None:
    state = State()
    state.apply([put("a.yaml", svc("a", "10.96.0.1"))])
    state.apply([put("a.yaml", svc("a", "10.96.0.1", 99999), svc("b", "10.96.0.2"))])
    assert accepted(state) == {"a": 80, "b": 80}
    assert lines(state) == ["a.yaml:7: Service default/a: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive"]
    state.apply([put("a.yaml", svc("b", "10.96.0.2"))])  # a left the file: gone, whatever its last version
    assert accepted(state) == {"b": 80} and lines(state) == []


def test_an_invalid_new_object_is_left_out() -> None:
    state = State()
    assert state.apply([put("a.yaml", svc("a", "10.96.0.1", 0))]) == {}
    assert accepted(state) == {} and len(lines(state)) == 1


def test_the_same_object_in_two_files_goes_to_the_first() -> None:
    state = State()
    state.apply([put("b.yaml", svc("a", "10.96.0.1"))])
    state.apply([put("a.yaml", svc("a", "10.96.0.1", 81))])  # later, though first by name
    assert accepted(state) == {"a": 80}
    assert lines(state) == ["a.yaml:3: Service default/a: metadata.name: Duplicate value: Service default/a is already defined at b.yaml:1"]
    changes = state.apply([Gone("b.yaml")])
    assert accepted(state) == {"a": 81} and lines(state) == [] and len(changes) == 1


def test_at_start_origins_are_taken_in_order() -> None:
    state = State()
    state.apply([put("b.yaml", svc("a", "10.96.0.1", 82)), put("a.yaml", svc("a", "10.96.0.1", 81))])
    assert accepted(state) == {"a": 82}  # the events' order: the source lists files sorted


def test_a_cluster_ip_or_node_port_held_twice_leaves_the_newcomer_out_until_it_is_free() -> None:
    state = State()
    state.apply([put("a.yaml", svc("a", "10.96.0.1", node_port=30001))])
    state.apply([put("b.yaml", svc("b", "10.96.0.1")), put("c.yaml", svc("c", "10.96.0.3", node_port=30001))])
    assert accepted(state) == {"a": 80}
    assert lines(state) == [
        'b.yaml:6: Service default/b: spec.clusterIPs[0]: Invalid value: "10.96.0.1": provided IP is already allocated (to Service default/a)',
        "c.yaml:7: Service default/c: spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated (to Service default/a)",
    ]
    changes = state.apply([Gone("a.yaml")])
    assert accepted(state) == {"b": 80, "c": 80} and lines(state) == []
    assert set(changes) == {Key("Service", "default", n) for n in "abc"}


def test_an_unchanged_object_in_a_changed_file_is_no_change() -> None:
    state = State()
    state.apply([put("a.yaml", svc("a", "10.96.0.1"), svc("b", "10.96.0.2"))])
    changes = state.apply([put("a.yaml", svc("a", "10.96.0.1"), svc("b", "10.96.0.2", 81))])
    assert list(changes) == [Key("Service", "default", "b")]


def test_an_unreadable_file_keeps_its_objects() -> None:
    state = State()
    state.apply([put("a.yaml", svc("a", "10.96.0.1"))])
    state.apply([Put("a.yaml", "", False, "cannot read: Permission denied")])
    assert accepted(state) == {"a": 80} and lines(state) == ["a.yaml: cannot read: Permission denied"]
