"""The fast paths (svcctl.fastload) give exactly what the exact paths of svcctl.load give, or
nothing: on every file of the corpus, the hostile inputs, the golden manifests, and random
documents made to hit what YAML 1.1 and 1.2, PyYAML and rapidyaml, read differently."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import yaml

from svcctl import fastload, fastyaml, load
from svcctl.load import Source
from svcctl.problems import InvalidInput
from svcctl.sources import read_manifests
from svcctl.validate import validate

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FILES = sorted(
    p
    for folder in (CORPUS, ROOT / "tests" / "hostile", ROOT / "golden", ROOT / "examples")
    if folder.is_dir()
    for p in folder.rglob("*")
    if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
)


def exact(source: Source) -> tuple[str, list[tuple[int, int]]] | None:
    """What the exact path reads, as text that tells every type apart (True from 1, 1 from 1.0)
    and keeps key order, and where each object stands; None when it reports a problem."""
    objects, problems = load._parse_exact(source)
    if problems:
        return None
    return repr([o.data for o in objects]), [o.origin.span for o in objects]


def agree(source: Source) -> bool:
    """The fast path reads the source as the exact path does, or declines. True if it read it."""
    objects = load._parse_fast(source)
    if objects is None:
        return False
    expected = exact(source)
    assert expected is not None, source.text[:2000]
    assert repr([o.data for o in objects]) == expected[0], source.text[:2000]
    assert [o.origin.span for o in objects] == expected[1]  # found lazily, by the exact path
    return True


def decode(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(p.parents[1])) for p in FILES])
def test_every_file(path: Path):
    text = decode(path)
    if text is not None:
        agree(Source(str(path), text.removeprefix("\ufeff"), path.suffix == ".json"))


def test_files_mostly_fast():
    """Most real manifests take the fast path (else it would be proven on nothing)."""
    texts = [(p, t) for p in FILES if (t := decode(p)) is not None]
    taken = sum(agree(Source(str(p), t, p.suffix == ".json")) for p, t in texts)
    assert taken > len(texts) // 2


def test_a_cluster_dump_is_fast():
    items = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "annotations": {"a": "yes", "b": "0777", "c": "1.5"}},
         "spec": {"ports": [{"port": 80, "targetPort": "http"}], "clusterIP": f"10.0.0.{i}", "x": [1.5, -0.0, None, True, "~"]}}
        for i in range(50)
    ]
    dump = {"apiVersion": "v1", "kind": "List", "items": items}
    assert agree(Source("d.yaml", yaml.safe_dump(dump, sort_keys=False), False))
    assert agree(Source("d.json", json.dumps(dump, indent=4), True))


# ---- JSON ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, taken",
    [
        ('{"a": 1, "b": {"c": [1, 2.5, -0, -0.0, true, null, "x:y"]}}', True),
        ('{"a": 1, "a": 2}', False),  # a key given twice: the exact path refuses it
        ('{"a": {"b": 1, "b": 1}, "c": "::"}', False),
        ('{"a": "\\u003a", "a": 1}', False),  # a colon spelled as an escape: not counted
        ('{"a": 18446744073709551616}', False),  # past 64 bits: orjson does not encode it
        ('{"a": 1e400}', False),
        ('{"a": NaN}', False),
        ('{"a": "\\ud800"}', False),
        ('{"a": 1} {"b": 2}', False),  # concatenated documents
        ('{"a": ' * 300 + "1" + "}" * 300, False),  # deeper than orjson encodes: the exact path's limits decide
        ('{"a": ' * 200 + "1" + "}" * 200, True),
        ('{"a": 1,}', False),
        ("", False),
    ],
)
def test_json_cases(text: str, taken: bool):
    assert agree(Source("x.json", text, True)) is taken


def test_json_duplicate_key_is_refused_and_located():
    text = '{"apiVersion": "v1", "kind": "List", "items": [{"a": 1}, {"b": 1, "b": 2}]}'
    assert fastload.json_documents(text) is None
    _, problems = load.parse_source(Source("x.json", text, True))
    assert [p.line for p in problems] == [1] and "already set" in problems[0].message


# ---- YAML ---------------------------------------------------------------------------------

TYPED = [
    "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "n", "true", "True", "TRUE",
    "false", "False", "FALSE", "null", "Null", "NULL", "~", "", "0", "-0", "+0", "1", "-1", "+1", "01", "0777", "08",
    "0o17", "0x1F", "0X1F", "0b101", "1_000", "1:30", "-1:30", "1:30.5", "1.5", "-1.5", "1.50", "1.", "-1.", ".5",
    "-.5", "+.5", "1e3", "1E3", "1.0e3", "1.0e+3", "1e+3", "1.0E-3", ".inf", ".Inf", "-.inf", "+.inf", "inf", "Inf",
    "-inf", "nan", ".nan", ".NaN", "NaN", "Infinity", "=", "<<", "2024-01-01", "2024-01-01T00:00:00Z", "12:00:00",
    "10.96.0.1", "fd00::1", "::1", "1.2.3", "0.", "00", "-01", "0x", "1__0", "123456789012345678901", "1e400",
    "3e4f", "0.1_0", "-", "--", ".", "..", "a:b", "a: b", "a #b", "a#b", "x,y", "[a]", "{a}", "'q'", '"q"',
]
STRINGS = ["svc", "node-1", "a b", "é", "日本", "\\", '"', "'", "#", "&a", "*a", "!x", "%x", "@x", "`x", "?x", ":x",
           "-x", "a\tb", "a\u2028b", "a\x85b", "\ufeff", "a\x7fb", "a\x01b", "x" * 1030]


TAME = ["svc", "node-1", "10.0.0.1", "fd00::1", "80", "-1", "1.5", "true", "false", "null", "a b", "x-y.z", "2024-01-01T00:00:00Z", ""]


def scalar(rng: random.Random, nasty: float = 1.0) -> str:
    """A scalar as it may stand in YAML: plain, quoted either way, or as a block."""
    value = rng.choice(TYPED + STRINGS if rng.random() < nasty else TAME)
    style = rng.randrange(6)
    if style == 0 and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style == 1:
        return json.dumps(value, ensure_ascii=rng.random() < 0.5)
    if style == 2 and rng.random() < 0.2:  # quoted over lines, the next at column 0
        quote = rng.choice("'\"")
        return quote + "x\n" + rng.choice(["- y", "-", "k: v", "  z", "items:", "#c"]) + quote
    return value


def block(rng: random.Random, depth: int, indent: int, nasty: float) -> list[str]:
    """Lines of a block mapping or sequence at ``indent`` columns."""
    pad = " " * indent
    lines: list[str] = []
    as_list = rng.random() < 0.3
    for i in range(rng.randrange(1, 5)):
        lead = f"{pad}- " if as_list else f"{pad}{scalar(rng, nasty) if rng.random() < 0.3 else 'k' + str(i)}: "
        kind = rng.randrange(10)
        if depth < 3 and kind < 3:
            sub = block(rng, depth + 1, indent + 2, nasty)
            if as_list and rng.random() < 0.5:
                lines.append(lead + sub[0].lstrip())
                lines += sub[1:]
            else:
                lines.append(lead.rstrip())
                lines += sub
        elif kind == 3:
            lines.append(lead + "[" + ", ".join(scalar(rng, nasty) for _ in range(rng.randrange(4))) + "]")
        elif kind == 4:
            lines.append(lead + "{" + ", ".join(f"{scalar(rng, nasty)}: {scalar(rng, nasty)}" for _ in range(rng.randrange(3))) + "}")
        elif kind == 5:
            lines.append(lead + rng.choice(["|", "|-", "|+", ">", ">-", "|2"]))
            lines += [pad + "   " + scalar(rng, nasty) for _ in range(rng.randrange(1, 3))]
        else:
            lines.append(lead + scalar(rng, nasty) + rng.choice(["", "", " # c", "  ", "#x"]))
    return lines


def items(rng: random.Random, nasty: float) -> str:
    """A List, its items at column 0 as kubectl prints them."""
    lines = ["apiVersion: v1", "items:"]
    for _ in range(rng.randrange(5)):
        item = block(rng, 1, 2, nasty)
        lines += ["- " + item[0].lstrip(), *item[1:]] if rng.random() < 0.9 else ["-", *item]
    return "\n".join(lines + ["kind: List", "metadata:", "  resourceVersion: ''"][: rng.randrange(4)])


def document(rng: random.Random) -> str:
    nasty = rng.choice([0.0, 0.02, 0.1, 0.5])
    if rng.random() < 0.4:
        docs = [items(rng, nasty)]
    else:
        docs = ["\n".join(block(rng, 0, 0, nasty)) for _ in range(rng.randrange(1, 3))]
    text = rng.choice(["\n---\n", "\n...\n---\n"]).join(docs) + rng.choice(["\n", "", "\n# end\n", "\n---\n"])
    for _ in range(rng.randrange(3) if rng.random() < 0.3 else 0):  # a few random edits
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice([" ", "\n", ":", "-", "'", '"', "#", "\t", "[", "]", "{", "}", ",", ""]) + text[at + 1 :]
    return text


def test_random_yaml_documents(monkeypatch, seed: int = 20261129, count: int = 3000):
    monkeypatch.setattr(fastyaml, "_ITEMS_A_RUN", 2)  # a List's items read two at a time
    rng = random.Random(seed)
    taken = sum(agree(Source("r.yaml", document(rng), False)) for _ in range(count))
    assert taken > count // 20  # and the rest declined: none was read differently


def test_declines_what_yaml_1_1_reads_otherwise():
    for value in ["yes", "0777", "~", "1_000", "1:30", "inf", "1e3", "-.5", "0x1F", "Null", "<<", "="]:
        assert fastyaml.yaml_documents(f"a: {value}\n") is None, value
        assert fastyaml.yaml_documents(f"a: '{value}'\n") == [{"a": value}]
    assert fastyaml.yaml_documents("a: 1.5\nb: true\nc:\nd: -0\n") == [{"a": 1.5, "b": True, "c": None, "d": 0}]
    assert fastyaml.yaml_documents("80: a\n") == [{"80": "a"}]
    assert fastyaml.yaml_documents("1.5: a\n") is None  # refused by the exact path: a float key


def test_yaml_duplicate_key_goes_to_the_exact_path():
    assert fastyaml.yaml_documents("a: 1\nb: {c: 1, c: 2}\n") is None


def test_rapidyaml_errors_are_not_printed(capfd):
    assert fastyaml.yaml_documents("a: b: c\n") is None
    assert capfd.readouterr().err == ""


# ---- whole runs: a big dump with problems, read by each path ------------------------------


def dump(services: int, bad: int) -> dict:
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    import cluster

    items = [cluster.service(i) for i in range(services)] + [cluster.endpoint_slice(i, 10) for i in range(services)]
    items[bad]["spec"]["ports"][0]["port"] = 70000
    items[services + bad]["endpoints"][3]["addresses"] = ["127.0.0.1"]
    items[services + bad + 1]["endpoints"][0]["conditions"]["ready"] = "yes"
    return {"apiVersion": "v1", "kind": "List", "items": items}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_problems_of_a_big_dump_are_the_exact_paths(fmt: str, tmp_path: Path, run_cli, monkeypatch):
    data = dump(700, 350)
    path = tmp_path / f"dump.{fmt}"
    path.write_text(json.dumps(data, indent=4) if fmt == "json" else yaml.safe_dump(data, sort_keys=False))
    assert path.stat().st_size >= load.FAST_PATH_BYTES
    source = Source(str(path), path.read_text(), fmt == "json")
    assert load._parse_fast(source) is not None  # the fast path reads it
    fast = run_cli("validate", str(path))
    monkeypatch.setattr(load, "FAST_PATH_BYTES", 1 << 40)
    exact = run_cli("validate", str(path))
    assert fast == exact and fast.code == 2
    assert len(fast.err.splitlines()) == 3 and all(f"{path}:" in line for line in fast.err.splitlines())


def test_a_file_that_changed_is_located_without_lines(tmp_path: Path):
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump(700, 350), indent=4))
    inputs = read_manifests([str(path)])
    objects, problems = load.parse(inputs)
    assert not problems and inputs.sources[0]._text is None  # let go of: it can be read again
    path.write_text(path.read_text() + "\n")  # changed before a problem asks for a line
    with pytest.raises(InvalidInput) as err:
        validate(objects)
    lines = err.value.lines()
    assert len(lines) == 3 and all(line.startswith(f"{path}: ") for line in lines), lines


@pytest.mark.parametrize(
    "text",
    [
        'a: "\\q"\n', 'a: "\\x4"\n', 'a: "\\u12"\n', 'a: "\\U0011FFFF"\n', 'a: "\\ud800"\n', 'a: "\\uDC00x"\n', 'a: b:\n',
        "a: [b,\nc]\n", "a: [b,\n  c]\n", "a: {b: c,\nd: e}\n", 'k:\n  a: "b\nc"\n', "a: 'b\n\n\nc'\n", 'a: "\\\n  b"\n',
        'a: "x\\"\n', "- a\n - b\n", "a:\n- b\n  - c\n", 'a: "\\0"\n', 'a: "\\e"\n', 'a: "\\uFEFF"\n', 'a: "\\U0001F600"\n',
        "k0: |2'   true\n", "k: |\n  x", "0: a\nfalse: b\n", "k: {\"-1\"::true}\n", "'.NaN': 1\n",
    ],
)
def test_edges(text: str):
    """Escapes, surrogates, flow collections over lines, and what the random documents found."""
    agree(Source("e.yaml", text, False))


def test_what_others_write_meanwhile_is_passed_on(capfd):
    with fastload.quiet_stderr():
        os.write(2, b"a log line\n")
    with pytest.raises(ValueError), fastload.quiet_stderr():
        os.write(2, b"rapidyaml's message\n")
        raise ValueError()
    assert capfd.readouterr().err == "a log line\n"
