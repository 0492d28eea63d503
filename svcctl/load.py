"""Parse manifests: YAML (one or many documents, lists) or JSON text, as read by ``svcctl.sources``.

Each Kubernetes object comes out as a plain dict with an ``Origin`` that remembers where it stood,
so that later stages can name the file and line of a problem. Field lines are found lazily, only
for fields that have a problem: recording them for every field would cost more than parsing.
"""

from __future__ import annotations

import bisect
import gc
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, NamedTuple

import yaml

from .problems import Path as FieldPath, Problem

# PyYAML's C loader is ~8x faster than the pure-Python one (kernel-notes.md: 5 s vs 40 s for 12 MB).
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that keeps timestamps as the strings the API server sends, and refuses a key
    given twice in one mapping, as kubectl does (PyYAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f'key "{key.value}" already set in map', key.start_mark
                    )
                seen.add(key.value)
        return super().construct_mapping(node, deep)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)

@dataclass(eq=False)
class Source:
    """One input text: a file, or standard input (named ``-``)."""

    name: str
    text: str
    is_json: bool

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line_at(self, offset: int) -> int:
        """1-based line number of a character offset."""
        return bisect.bisect_right(self._line_starts, offset)


class Inputs(NamedTuple):
    """What the pure core reads: the input texts, and the problems of the inputs that could not
    be read (reported together with everything else wrong)."""

    sources: list[Source]
    unread: list[Problem] = []


@dataclass(eq=False)
class Origin:
    """Where one object stands: its source and the character span of its text."""

    source: Source
    start: int
    end: int
    _field_lines: dict[FieldPath, int] = field(default_factory=dict, repr=False)

    @property
    def line(self) -> int:
        return self.source.line_at(self.start)

    def line_of(self, path: FieldPath = ()) -> int:
        """Line of the field at ``path`` (the deepest part of it that exists), else of the object."""
        if not path:
            return self.line
        if path not in self._field_lines:
            self._field_lines[path] = _locate_field(self, path)
        return self._field_lines[path]


@dataclass(frozen=True)
class RawObject:
    data: dict[str, Any]
    origin: Origin


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector. A cluster dump builds millions of small objects that
    all stay alive; the collector would walk them again and again while they are created
    (kernel-notes.md: loading is 2.5x faster with it paused). They hold no cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # Move what was built into the permanent generation: otherwise the first collection
            # after re-enabling walks all of it once more (0.4 s for 10,000 Services).
            gc.freeze()
            gc.enable()


def parse_source(source: Source) -> tuple[list[RawObject], list[Problem]]:
    """Split one source into Kubernetes objects (List items expanded). Never raises for bad input."""
    with gc_paused():
        if source.is_json:
            return _parse_json(source)
        return _parse_yaml(source)


# ---- YAML ---------------------------------------------------------------------------------


def _parse_yaml(source: Source) -> tuple[list[RawObject], list[Problem]]:
    try:
        return _yaml_objects(source)
    except yaml.MarkedYAMLError as err:
        # Go's YAML parser (kubectl) accepts a TAB after a value, PyYAML does not. Retry once with
        # trailing blanks removed: line numbers stay the same, only line ends change.
        if "\\t" in str(err.problem or "") or "\t" in str(err.problem or ""):
            stripped = re.sub(r"[ \t]+$", "", source.text, flags=re.MULTILINE)
            if stripped != source.text:
                retry = Source(source.name, stripped, False)
                try:
                    return _yaml_objects(retry)
                except yaml.MarkedYAMLError:
                    pass
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (err.context, err.problem) if x)
        return [], [Problem(f"invalid YAML: {what}", file=source.name, line=line)]
    except yaml.YAMLError as err:
        return [], [Problem(f"invalid YAML: {err}", file=source.name)]


def _yaml_objects(source: Source) -> tuple[list[RawObject], list[Problem]]:
    objects: list[RawObject] = []
    problems: list[Problem] = []
    loader = _Loader(source.text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            _collect(data, source, node.start_mark.index, node.end_mark.index, _yaml_items(node), objects, problems)
    finally:
        loader.dispose()
    return objects, problems


def _yaml_items(node: yaml.Node) -> list[tuple[int, int]] | None:
    """Spans of the ``items`` of a List document, from the composed node tree."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(value, yaml.SequenceNode):
            return [(item.start_mark.index, item.end_mark.index) for item in value.value]
    return None


# ---- JSON ---------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


def _parse_json(source: Source) -> tuple[list[RawObject], list[Problem]]:
    objects: list[RawObject] = []
    problems: list[Problem] = []
    text = source.text
    pos = _WS.match(text, 0).end()
    try:
        while pos < len(text):  # kubectl prints one document; concatenated documents are accepted too
            start = pos
            data, pos, items = _json_document(text, pos)
            _collect(data, source, start, pos, items, objects, problems)
            pos = _WS.match(text, pos).end()
    except json.JSONDecodeError as err:
        problems.append(Problem(f"invalid JSON: {err.msg} (column {err.colno})", file=source.name, line=err.lineno))
    return objects, problems


def _json_document(text: str, pos: int) -> tuple[Any, int, list[tuple[int, int]] | None]:
    """Decode one JSON value at ``pos``; for an object, decode ``items`` element by element to
    learn where each one starts (the json module gives no positions otherwise)."""
    decoder = _DECODER
    if text[pos : pos + 1] != "{":
        value, end = decoder.raw_decode(text, pos)
        return value, end, None
    result: dict[str, Any] = {}
    items: list[tuple[int, int]] | None = None
    pos = _WS.match(text, pos + 1).end()
    if text[pos : pos + 1] == "}":
        return result, pos + 1, None
    while True:
        if text[pos : pos + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
        key, pos = json.decoder.scanstring(text, pos + 1)
        pos = _WS.match(text, pos).end()
        if text[pos : pos + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
        pos = _WS.match(text, pos + 1).end()
        if key == "items" and text[pos : pos + 1] == "[":
            result[key], pos, items = _json_array_with_spans(text, pos)
        else:
            result[key], pos = decoder.raw_decode(text, pos)
        pos = _WS.match(text, pos).end()
        if text[pos : pos + 1] == "}":
            return result, pos + 1, items
        if text[pos : pos + 1] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
        pos = _WS.match(text, pos + 1).end()


def _json_array_with_spans(text: str, pos: int) -> tuple[list[Any], int, list[tuple[int, int]]]:
    values: list[Any] = []
    spans: list[tuple[int, int]] = []
    pos = _WS.match(text, pos + 1).end()
    if text[pos : pos + 1] == "]":
        return values, pos + 1, spans
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        values.append(value)
        spans.append((pos, end))
        pos = _WS.match(text, end).end()
        if text[pos : pos + 1] == "]":
            return values, pos + 1, spans
        if text[pos : pos + 1] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
        pos = _WS.match(text, pos + 1).end()


_DECODER = json.JSONDecoder()


# ---- shared -------------------------------------------------------------------------------


def _collect(
    data: Any,
    source: Source,
    start: int,
    end: int,
    item_spans: list[tuple[int, int]] | None,
    objects: list[RawObject],
    problems: list[Problem],
) -> None:
    """Add one document's objects: the document itself, or the items of a ``kind: List``."""
    if data is None:  # an empty document (a stray ``---``)
        return
    origin = Origin(source, start, end)
    if not isinstance(data, dict):
        problems.append(Problem("a manifest must be a mapping (an object with apiVersion and kind)", origin=origin))
        return
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in data:
        items = data["items"]
        if not isinstance(items, list):
            problems.append(Problem("must be a list", ("items",), origin=origin))
            return
        spans = item_spans if item_spans is not None and len(item_spans) == len(items) else [(start, end)] * len(items)
        # A typed list (ServiceList, as the API returns it) may leave out its items' kind and apiVersion.
        item_kind = kind[: -len("List")]
        implied = {"kind": item_kind, "apiVersion": data.get("apiVersion")} if item_kind else {}
        for i, (item, (s, e)) in enumerate(zip(items, spans)):
            item_origin = Origin(source, s, e)
            if isinstance(item, dict):
                if implied and not ("kind" in item and "apiVersion" in item):
                    item = {**implied, **item}
                objects.append(RawObject(item, item_origin))
            elif item is not None:
                problems.append(Problem("must be an object", ("items", i), origin=origin))
        return
    objects.append(RawObject(data, origin))


def parse(inputs: Inputs) -> tuple[list[RawObject], list[Problem]]:
    """Parse every source: the objects found, and the problems of what could not be read or parsed."""
    objects: list[RawObject] = []
    problems: list[Problem] = list(inputs.unread)
    for source in inputs.sources:
        found, bad = parse_source(source)
        objects.extend(found)
        problems.extend(bad)
    return objects, problems


# ---- locating a field, lazily -------------------------------------------------------------


# Fields the API server fills from another one the user wrote: a problem in clusterIPs[0] is on
# the clusterIP line when clusterIPs was not written.
_DEFAULTED_FROM = {"clusterIPs": "clusterIP"}


def _locate_field(origin: Origin, path: FieldPath) -> int:
    """Line of the deepest existing part of ``path`` inside the object, by composing (not
    constructing) the object's own text again. Falls back to the object's line."""
    source = origin.source
    line_start = source.text.rfind("\n", 0, origin.start) + 1
    # Keep columns: blank out what precedes the object on its first line (a list's "- ").
    prefix = " " * (origin.start - line_start)
    snippet = prefix + source.text[origin.start : origin.end]
    if source.is_json:
        snippet = snippet.replace("\t", " ")  # JSON allows TABs as blanks, YAML does not
    try:
        node = yaml.compose(snippet, Loader=_Loader)
    except yaml.YAMLError:
        return origin.line
    best = node.start_mark.line if node is not None else 0
    for part in path:
        if node is None:
            break
        found = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in (part, _DEFAULTED_FROM.get(part)):
                    best = key.start_mark.line
                    found = value
                    if key.value == part:
                        break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            found = node.value[part]
            best = found.start_mark.line
        node = found
    return origin.line + best  # the snippet's first line is the object's line
