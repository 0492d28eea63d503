"""Parse manifests: YAML (one or many documents, lists) or JSON text, as read by ``svcctl.sources``.

Each Kubernetes object comes out as a plain dict with an ``Origin`` that remembers where it stood,
so that later stages can name the file and line of a problem. Field lines are found lazily, only
for objects that have a problem: recording them for every field would cost more than parsing.

Bad input is refused with one problem at ``FILE:LINE:COLUMN``, never an exception: a syntax
error, a key given twice, nesting deeper than ``MAX_DEPTH`` (libyaml's composer recurses on the C
stack and crashes the process at ~30,000 levels), an integer too long for Python to convert.
What YAML can say and JSON cannot is read as kubectl reads it (sigs.k8s.io/yaml turns YAML into
JSON): integer and boolean keys become strings, ``!!binary`` its text, ``!!set`` a map of nulls.
"""

from __future__ import annotations

import bisect
import gc
import json
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterator, NamedTuple

import yaml

from .problems import Key, Path as FieldPath, Problem, quote, show_value

# PyYAML's C loader is ~8x faster than the pure-Python one (kernel-notes.md: 5 s vs 40 s for 12 MB).
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Levels of nesting one document may have. Kubernetes objects nest about 20 deep (a CRD's schema
# perhaps 60); JSON is held to about the same by Python's decoder (its recursion limit, ~1000).
MAX_DEPTH = 1000
_MAX_DIGITS = sys.get_int_max_str_digits()  # Python refuses longer integers: converting is quadratic
_STR = "tag:yaml.org,2002:str"


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that keeps timestamps as the strings the API server sends, refuses a key given
    twice in one mapping as kubectl does (PyYAML would silently keep the last), and builds only
    what JSON can hold."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        other_keys = False
        for key, _ in node.value:
            if key.tag == _STR:
                if key.value in seen:
                    raise _duplicate(key.value, key)
                seen.add(key.value)
            elif key.tag != "tag:yaml.org,2002:merge":
                other_keys = True
        mapping = super().construct_mapping(node, deep)
        return _json_keys(self, node, mapping) if other_keys else mapping

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value = super().construct_yaml_int(node)
            if abs(value) >> 64:  # 0x..., 0b... and 1:2:3 forms are not held to the limit by int()
                str(value)
            return value
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, f"integer with more than {_MAX_DIGITS} digits", node.start_mark
            ) from None

    def construct_yaml_binary(self, node: yaml.ScalarNode) -> str:
        # kubectl's YAML decoder gives the decoded bytes as a string (JSON then replaces what is no UTF-8).
        return super().construct_yaml_binary(node).decode("utf-8", "replace")


def _json_keys(loader: _Loader, node: yaml.MappingNode, mapping: dict[Any, Any]) -> dict[str, Any]:
    """A mapping with integer or boolean keys, with them as strings (`80: x` is `"80": x` to
    kubectl); any other key (null, a float, a list) is refused."""
    converted: dict[str, Any] = {}
    by_key = {loader.construct_object(k): k for k, _ in node.value}
    for key, value in mapping.items():
        key_node = by_key.get(key, node)
        if isinstance(key, bool):
            text = "true" if key else "false"
        elif isinstance(key, (int, str)):
            text = str(key)
        else:
            raise yaml.constructor.ConstructorError(
                None, None, f"unsupported mapping key {show_value(key)}: keys are strings, integers or booleans", key_node.start_mark
            )
        if text in converted:
            raise _duplicate(text, key_node)
        converted[text] = value
    return converted


def _duplicate(key: str, node: yaml.Node) -> yaml.MarkedYAMLError:
    return yaml.constructor.ConstructorError(None, None, f"key {quote(key)} already set in map", node.start_mark)


# The constructors are looked up by tag in a table filled when the base class was made: register
# the overrides, and what JSON has no type for as what kubectl makes of it.
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_yaml_binary)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)
_Loader.add_constructor("tag:yaml.org,2002:set", _BaseLoader.construct_yaml_map)  # {a, b}: a and b map to null
_Loader.add_constructor("tag:yaml.org,2002:omap", _BaseLoader.construct_yaml_seq)  # [a: 1, b: 2]: a list of maps
_Loader.add_constructor("tag:yaml.org,2002:pairs", _BaseLoader.construct_yaml_seq)


class Source:
    """One input text: a file, or standard input (named ``-``). ``name`` is as it is shown.

    A big file's text is let go once the fast path has read it (``release``): 71 MB of a
    10,000-Service dump that only a problem found later needs. ``reread`` then reads it again,
    or gives None if the file is no longer what was read (its problems are then shown without
    a line)."""

    def __init__(self, name: str, text: str, is_json: bool, reread: Callable[[], str | None] | None = None):
        self.name = name
        self._text: str | None = text
        self.is_json = is_json
        self._reread = reread
        self.changed = False  # the file was reread and is not what was parsed

    def __repr__(self) -> str:
        return f"Source({self.name!r}, is_json={self.is_json})"

    @property
    def text(self) -> str:
        if self._text is None:
            assert self._reread is not None
            self._text = self._reread()
            if self._text is None:
                self.changed, self._text = True, ""
        return self._text

    def release(self) -> None:
        """Let go of the text if it can be read again."""
        if self._reread is not None:
            self._text = None

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line_at(self, offset: int) -> int:
        """1-based line number of a character offset."""
        return bisect.bisect_right(self._line_starts, offset)

    @cached_property
    def object_spans(self) -> list[tuple[int, int]]:
        """The span of each object the source holds, in order, as the exact path finds them."""
        return [o.origin.span for o in _parse_exact(self)[0]]

    def problem_at(self, offset: int, message: str) -> Problem:
        """A problem at a character offset: FILE:LINE:COLUMN."""
        line = self.line_at(offset)
        return Problem(message, file=self.name, line=line, column=offset - self._line_starts[line - 1] + 1)


class Inputs(NamedTuple):
    """What the pure core reads: the input texts, and the problems of the inputs that could not
    be read (reported together with everything else wrong)."""

    sources: list[Source]
    unread: list[Problem] = []


class Origin:
    """Where one object stands: its source and the character span of its text. The fast paths
    (svcctl.fastload) know no positions: their objects' spans are looked up, only when a
    problem asks for one, as the ``index``-th object of its source read by the exact path."""

    __slots__ = ("source", "_span", "_index", "_fields")

    def __init__(self, source: Source, start: int = -1, end: int = -1, index: int = -1):
        self.source = source
        self._span = (start, end) if start >= 0 else None
        self._index = index
        self._fields: _FieldLines | None = None

    @property
    def start(self) -> int:
        return self.span[0]

    @property
    def end(self) -> int:
        return self.span[1]

    @property
    def span(self) -> tuple[int, int]:
        if self._span is None:
            spans = self.source.object_spans  # reads the text again if it was let go
            self._span = (0, 0) if self.source.changed else spans[self._index]
        return self._span

    @property
    def line(self) -> int:
        """The object's line; 0 (unknown) if its file changed since it was parsed."""
        start = self.start
        return 0 if self.source.changed else self.source.line_at(start)

    def line_of(self, path: FieldPath = ()) -> int:
        """Line of the field at ``path`` (the deepest part of it that exists), else of the object."""
        if not path or self.line == 0:
            return self.line
        if self._fields is None:
            self._fields = _FieldLines(self)
        return self._fields.line_of(path)


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


# Below this size a text is read by the exact path alone: it takes milliseconds, and the fast
# path's libraries are not even imported.
FAST_PATH_BYTES = 1 << 20


def parse_source(source: Source) -> tuple[list[RawObject], list[Problem]]:
    """Split one source into Kubernetes objects (List items expanded). Never raises for bad input."""
    with gc_paused():
        if len(source.text) >= FAST_PATH_BYTES and (objects := _parse_fast(source)) is not None:
            source.release()
            return objects, []
        return _parse_exact(source)


def _parse_exact(source: Source) -> tuple[list[RawObject], list[Problem]]:
    return _parse_json(source) if source.is_json else _parse_yaml(source)


def _parse_fast(source: Source) -> list[RawObject] | None:
    """The objects of a source read by svcctl.fastload, or None where the exact path must read it
    (also for any problem: the exact path words and places every one)."""
    # Imported by the texts that take this path only: msgspec, orjson, rapidyaml, regular expressions.
    if source.is_json:
        from .fastload import json_documents as documents_of
    else:
        from .fastyaml import yaml_documents as documents_of
    documents = documents_of(source.text)
    if documents is None:
        return None
    objects: list[RawObject] = []
    problems: list[Problem] = []
    for data in documents:
        _collect(data, source, -1, -1, None, objects, problems)
    return None if problems else objects


def parse_yaml_document(source: Source) -> tuple[Any, list[Problem]]:
    """The one YAML document of a source (a config file), or the problem that it has."""
    try:
        _check_depth(source.text)
        return yaml.load(source.text, Loader=_Loader), []
    except yaml.YAMLError as err:
        return None, [_yaml_problem(source, err)]


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
        return [], [_yaml_problem(source, err)]
    except yaml.YAMLError as err:
        return [], [_yaml_problem(source, err)]


def _yaml_problem(source: Source, err: yaml.YAMLError) -> Problem:
    """One line, at FILE:LINE:COLUMN where the parser says (str(err) spans several lines)."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        what = " ".join(x for x in (err.context, err.problem) if x)
        if mark is None:
            return Problem(f"invalid YAML: {what}", file=source.name)
        return Problem(f"invalid YAML: {what}", file=source.name, line=mark.line + 1, column=mark.column + 1)
    if isinstance(err, yaml.reader.ReaderError):
        # libyaml counts this position in bytes of the UTF-8 text, marks in characters.
        offset = len(source.text.encode("utf-8")[: err.position].decode("utf-8", "ignore"))
        return source.problem_at(offset, f"invalid YAML: unacceptable character #x{err.character:04x}: {err.reason}")
    return Problem(f"invalid YAML: {err}", file=source.name)


def _yaml_objects(source: Source) -> tuple[list[RawObject], list[Problem]]:
    _check_depth(source.text)
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


_LINE_BREAK = "\r\n\x85\u2028\u2029"  # what YAML takes for the end of a line
_DEEP_BLOCK = re.compile(f"(?:^|[{_LINE_BREAK}])[ \\t?:-]{{{MAX_DEPTH // 4}}}")
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _check_depth(text: str) -> None:
    """Raise a YAML error where the text nests deeper than MAX_DEPTH, before anything composes it.

    Counting is cheap and sound: each flow level needs a `[` or `{` (an empty `[]` or `{}` adds
    one level for a moment), each two block levels one more column of indentation or one more
    `- `, `? `, `: ` in front of a line. Only when the counts allow more than MAX_DEPTH are the
    parser's events followed (no recursion, but ~20% of the parse time)."""
    flow = text.count("[") + text.count("{")
    if flow >= MAX_DEPTH // 2:
        flow -= text.count("[]") + text.count("{}")
    if flow < MAX_DEPTH // 2 and not _DEEP_BLOCK.search(text):
        return
    loader = _BaseLoader(text)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, _OPENS):
                depth += 1
                if depth > MAX_DEPTH:
                    raise yaml.MarkedYAMLError(problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=event.start_mark)
            elif isinstance(event, _CLOSES):
                depth -= 1
    finally:
        loader.dispose()


# ---- JSON ---------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


class _DuplicateKey(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a key given twice: refused like YAML's (Go's strict decoding does)
        raise _DuplicateKey()
    return obj


def _skip_space(text: str, pos: int) -> int:
    """The position after the JSON whitespace at ``pos``."""
    return _WS.match(text, pos).end()  # type: ignore[union-attr]  # the pattern matches "" too


_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def _parse_json(source: Source) -> tuple[list[RawObject], list[Problem]]:
    objects: list[RawObject] = []
    problems: list[Problem] = []
    text = source.text
    pos = _skip_space(text, 0)
    start = pos
    try:
        while pos < len(text):  # kubectl prints one document; concatenated documents are accepted too
            start = pos
            data, pos, items = _json_document(text, pos)
            _collect(data, source, start, pos, items, objects, problems)
            pos = _skip_space(text, pos)
    except json.JSONDecodeError as err:
        # The decoder's messages end in " at" (the position follows): "Invalid control character at".
        what = err.msg.removesuffix(" at").removesuffix(" starting")
        problems.append(Problem(f"invalid JSON: {what}", file=source.name, line=err.lineno, column=err.colno))
    except _DuplicateKey:
        problems.append(_json_duplicate(source, start))
    except RecursionError:
        problems.append(source.problem_at(_shape(text, start).deepest, _TOO_DEEP_JSON))
    except ValueError:  # an integer Python will not convert
        problems.append(source.problem_at(_long_integer(text, start), f"invalid JSON: integer with more than {_MAX_DIGITS} digits"))
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
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return result, pos + 1, None
    while True:
        if text[pos : pos + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
        key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]  # in the module, not its stubs
        if key in result:
            raise _DuplicateKey()
        pos = _skip_space(text, pos)
        if text[pos : pos + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
        pos = _skip_space(text, pos + 1)
        if key == "items" and text[pos : pos + 1] == "[":
            result[key], pos, items = _json_array_with_spans(text, pos)
        else:
            result[key], pos = decoder.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        if text[pos : pos + 1] == "}":
            return result, pos + 1, items
        if text[pos : pos + 1] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
        pos = _skip_space(text, pos + 1)


def _json_array_with_spans(text: str, pos: int) -> tuple[list[Any], int, list[tuple[int, int]]]:
    values: list[Any] = []
    spans: list[tuple[int, int]] = []
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return values, pos + 1, spans
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        values.append(value)
        spans.append((pos, end))
        pos = _skip_space(text, end)
        if text[pos : pos + 1] == "]":
            return values, pos + 1, spans
        if text[pos : pos + 1] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
        pos = _skip_space(text, pos + 1)


# Where a document that failed to decode went wrong: these scan its text again, only then.

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?')


class _Shape(NamedTuple):
    deepest: int  # offset where the document first nests deeper than MAX_DEPTH, else first reaches its deepest level
    depth: int
    end: int  # offset where the document closes


def _shape(text: str, start: int) -> _Shape:
    depth = deepest = 0
    at = start
    for m in _JSON_TOKEN.finditer(text, start):
        c = text[m.start()]
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, m.start()
                if depth > MAX_DEPTH:
                    break
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return _Shape(at, deepest, m.end())
    return _Shape(at, deepest, len(text))


def _long_integer(text: str, start: int) -> int:
    for m in _JSON_TOKEN.finditer(text, start):
        number = m.group().lstrip("-")
        if number.isdigit() and len(number) > _MAX_DIGITS:
            return m.start()
    return start


def _json_duplicate(source: Source, start: int) -> Problem:
    """The first key given twice in the JSON document at ``start``: composed as YAML (JSON is
    YAML), which keeps every key and where it stands."""
    shape = _shape(source.text, start)
    if shape.depth > MAX_DEPTH:  # too deep to compose; and refused for that all the same
        return source.problem_at(shape.deepest, _TOO_DEEP_JSON)
    first: tuple[int, str] | None = None
    node, base = _compose(source, start, shape.end)
    for mapping in _mappings(node):
        seen: set[str] = set()
        for key, _ in mapping.value:
            if key.value in seen and (first is None or key.start_mark.index < first[0]):
                first = (key.start_mark.index, key.value)
            seen.add(key.value)
    if first is None:  # it did not compose: name the document
        return source.problem_at(start, "invalid JSON: a key is given twice in one object")
    return source.problem_at(base + first[0], f"invalid JSON: key {quote(first[1])} already set in map")


_TOO_DEEP_JSON = "invalid JSON: nested too deep (Python's JSON decoder stops at about 1000 levels)"


def _mappings(node: yaml.Node | None) -> Iterator[yaml.MappingNode]:
    stack = [node] if node is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            yield node
            stack.extend(value for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


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
    """Add one document's objects: the document itself, or the items of a ``kind: List`` and of
    Lists among them, as kubectl's builder flattens them (their items are located at the inner
    List). Each List is expanded once: a YAML alias may name one again, inside itself or many
    times over (a few hundred bytes would otherwise stand for endless or billions of objects)."""
    if data is None:  # an empty document (a stray ``---``)
        return
    # start < 0 (the fast path): each object's origin is found when asked for (Origin.span).
    origin = Origin(source, start, end, index=len(objects))
    if not isinstance(data, dict):
        problems.append(Problem("a manifest must be a mapping (an object with apiVersion and kind)", origin=origin))
        return
    if not _is_list(data):
        objects.append(RawObject(data, origin))
        return
    expanded = {id(data)}
    lists = [_list_items(data, start, end, item_spans, origin, problems)]  # depth first: text order
    while lists:
        found = next(lists[-1], None)
        if found is None:
            lists.pop()
            continue
        item, s, e = found
        at = Origin(source, s, e, index=len(objects))
        if not _is_list(item):
            objects.append(RawObject(item, at))
        elif id(item) in expanded:
            problems.append(Problem("a List that is given again by a YAML alias: its items are read once", origin=at))
        else:
            expanded.add(id(item))
            lists.append(_list_items(item, s, e, None, at, problems))


def _is_list(data: dict[str, Any]) -> bool:
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and "items" in data


def _list_items(
    data: dict[str, Any], start: int, end: int, item_spans: list[tuple[int, int]] | None, origin: Origin, problems: list[Problem]
) -> Iterator[tuple[dict[str, Any], int, int]]:
    """A List's items that are objects, with their spans; a problem for each that is not."""
    items = data["items"]
    if not isinstance(items, list):
        problems.append(Problem("must be a list", ("items",), origin=origin))
        return
    spans = item_spans if item_spans is not None and len(item_spans) == len(items) else [(start, end)] * len(items)
    # A typed list (ServiceList, as the API returns it) may leave out its items' kind and apiVersion.
    item_kind = data["kind"][: -len("List")]
    implied = {"kind": item_kind, "apiVersion": data.get("apiVersion")} if item_kind else {}
    for i, (item, (s, e)) in enumerate(zip(items, spans)):
        if isinstance(item, dict):
            if implied and not ("kind" in item and "apiVersion" in item):
                item = {**implied, **item}
            yield item, s, e
        elif item is not None:
            problems.append(Problem("must be an object", ("items", i), origin=origin))


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


def _compose(source: Source, start: int, end: int) -> tuple[yaml.Node | None, int]:
    """The node tree of ``source.text[start:end]`` (composed, not constructed: every key kept,
    with its mark; None if it does not compose), and the offset in the text its marks count from.
    Its first line is the object's line."""
    text = source.text
    # A block mapping keeps its columns: what precedes it on its line (a list's "- ") is blanked
    # out. A flow collection needs none (and on a minified line, none is cheaper by far).
    base = start if text[start : start + 1] in ("{", "[") else text.rfind("\n", 0, start) + 1
    snippet = " " * (start - base) + text[start:end]
    if source.is_json:
        snippet = snippet.replace("\t", " ")  # JSON allows TABs as blanks, YAML does not
    try:
        return yaml.compose(snippet, Loader=_BaseLoader), base
    except yaml.YAMLError:
        return None, base


# Fields the API server fills from another one the user wrote: a problem in clusterIPs[0] is on
# the clusterIP line when clusterIPs was not written.
_DEFAULTED_FROM = {"clusterIPs": "clusterIP"}


class _FieldLines:
    """The lines of an object's fields. Its text is composed once, on the first question, and each
    mapping indexed by key once, when a path first goes through it: the problems of one object
    are located in time linear in their number."""

    def __init__(self, origin: Origin):
        self.origin = origin
        self.root = _compose(origin.source, origin.start, origin.end)[0]
        self.keys: dict[int, dict[str, tuple[int, yaml.Node]]] = {}  # id(mapping node) -> key -> (line, value)
        self.lines: dict[FieldPath, int] = {}

    def line_of(self, path: FieldPath) -> int:
        if path not in self.lines:
            self.lines[path] = self.origin.line + self._walk(path)  # the snippet starts on the object's line
        return self.lines[path]

    def _walk(self, path: FieldPath) -> int:
        """Line within the snippet of the deepest existing part of ``path``."""
        node = self.root
        if node is None:
            return 0
        best = node.start_mark.line
        for part in path:
            found: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                index = self._index(node)
                hit = index.get(part)
                if hit is None and not isinstance(part, Key) and part in _DEFAULTED_FROM:
                    hit = index.get(_DEFAULTED_FROM[part])
                if hit is not None:
                    best, found = hit
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                found = node.value[part]
                best = found.start_mark.line
            if found is None:
                break
            node = found
        return best

    def _index(self, node: yaml.MappingNode) -> dict[str, tuple[int, yaml.Node]]:
        index = self.keys.get(id(node))
        if index is None:
            index = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    index.setdefault(key.value, (key.start_mark.line, value))
            self.keys[id(node)] = index
        return index
