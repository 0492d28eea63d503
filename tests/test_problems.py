"""How problems show a user's text: quoted and escaped as the API server does (Go's %q), so that
a value can never split a problem over two lines, forge a FILE:LINE line or colour a terminal."""

from __future__ import annotations

import pytest

from svcctl.problems import Key, Problem, format_path, one_line, plain, quote, show_file, show_ref, show_value


@pytest.mark.parametrize(
    "text, shown",
    [
        ("web", '"web"'),
        ("a\nb", '"a\\nb"'),
        ("\x1b[31mred", '"\\x1b[31mred"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("tab\there", '"tab\\there"'),
        ("\u202egnp.exe", '"\\u202egnp.exe"'),  # a right-to-left override is not printable
        ("\ud800", '"\\ud800"'),  # a lone surrogate (JSON "\ud800") would not even encode
        ("caf\xe9", '"caf\xe9"'),  # printable non-ASCII stays as it is, as in Go
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_quote_is_gos_percent_q(text, shown):
    assert quote(text) == shown


@pytest.mark.parametrize(
    "value, shown",
    [(True, "true"), (None, "null"), (80, "80"), (1.5, "1.5"), (80.0, "80"), (float("inf"), "+Inf"),
     (float("nan"), "NaN"), ({}, "object"), ([1], "list"), ("x", '"x"')],
)
def test_show_value_speaks_json_and_go(value, shown):
    assert show_value(value) == shown


def test_paths_print_map_keys_in_brackets_and_quote_what_is_not_plain():
    assert format_path(("metadata", "labels", Key("app.kubernetes.io/name"))) == "metadata.labels[app.kubernetes.io/name]"
    assert format_path(("spec", "ports", 0, "port")) == "spec.ports[0].port"
    assert format_path(("spec", "a\nb")) == 'spec."a\\nb"'
    assert format_path(("metadata", "labels", Key(""))) == 'metadata.labels[""]'


def test_refs_and_file_names_are_quoted_only_when_they_must_be():
    assert show_ref("default/web") == "default/web"
    assert show_ref("node-1") == "node-1"
    assert show_ref("default/a\nb") == '"default/a\\nb"'
    assert show_ref("x/y/z") == '"x/y/z"'
    assert show_file("dir with space/m.yaml") == "dir with space/m.yaml"
    assert show_file("evil\n.yaml") == '"evil\\n.yaml"'
    assert show_file("bad\udcff.yaml") == '"bad\\xff.yaml"'  # a byte that is no UTF-8, as Python keeps it
    assert show_file("") == '""'
    assert plain("v1/Service") == "v1/Service" and plain("a b") == '"a b"'


def test_a_rendered_problem_is_always_one_printable_line():
    problem = Problem("Invalid value: x\n\x1b[2J", ("metadata", "name"), kind="Service", ref="default/a\nb", file="m.yaml", line=3)
    line = problem.render()
    assert line == 'm.yaml:3: Service "default/a\\nb": metadata.name: Invalid value: x\\n\\x1b[2J'
    assert line.isprintable()
    assert one_line("ok") == "ok"


def test_a_column_follows_the_line_when_the_parser_knows_it():
    assert Problem("invalid YAML: x", file="m.yaml", line=3, column=7).render() == "m.yaml:3:7: invalid YAML: x"
    assert Problem("no such file or directory", file="m.yaml").render() == "m.yaml: no such file or directory"
