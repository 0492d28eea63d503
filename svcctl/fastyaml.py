"""The YAML fast path (see svcctl.fastload): which texts rapidyaml reads as PyYAML does, and
reading them.

rapidyaml reads YAML 1.2 and writes what it read as JSON; PyYAML (libyaml, as kubectl's go-yaml)
reads YAML 1.1. A text goes this way only if none of what they read differently is in it: a plain
scalar typed otherwise (``yes``, ``0777``, ``~``, ``1:30``, ``inf``, which rapidyaml writes as
``.inf``), a tag, anchor, alias, merge key, directive, explicit key, a quoted key over several
lines, what libyaml refuses and rapidyaml does not (flow indicators where a scalar starts, text
after a block scalar's header, "---" missing after "..."), a character PyYAML refuses or takes
for a line break (TAB, CR, NEL, LS, PS, BOM, other controls), a line longer than libyaml's limit
for a key (1,024 characters). Screening a 28 MB dump with one regular expression took 20 s: each
check here starts with a literal or rare character, which the regular expression engine finds at
C speed, and only the lines found are checked in full.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from .fastload import json_documents, quiet_stderr

# Plain scalars PyYAML (YAML 1.1) resolves to something other than a string (its resolver's
# patterns), and those rapidyaml writes as a JSON number or rewrites (inf is ".inf" to it).
_BOOL = r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
_NULL = r"~|null|Null|NULL"
_INT = r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
_FLOAT = (
    r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_RYML_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.?(?i:inf|nan|infinity)"
_TYPED = f"(?:{_BOOL}|{_NULL}|{_INT}|{_FLOAT}|{_RYML_NUMBER}|=|<<)"
# Read the same by both: JSON's literals and numbers as JSON writes them; as a key, only what
# is its own text as a string (an integer key is its decimal text to kubectl, and to load), but
# for 0, 1, false and true, which are one key to a Python dict (0 == False).
_SAME_KEY = r"-?(?:[2-9]|[1-9][0-9]+)|-1"
_SAME_VALUE = r"true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_KEY_END = r"[ ]*:(?:[\s,\]}]|\Z)"
_END = rf"(?=[\s,\]}}]|\Z|{_KEY_END})"  # what ends a plain scalar
_AFTER = r"(?=[\s,\]}:#]|\Z)"  # a superset, for those typed ("yes#x" is one string, and so is "1:x")
# A plain scalar read differently, on one line: where one may start (a line, "- ", ": ", flow
# indicators, or "a":yes after a quoted key), not one read the same, one that is typed.
_DIFFERENT = re.compile(
    f"(?:^|(?<=[\\s\\[{{,])|(?<=[\"']:))(?!(?:{_SAME_KEY}){_END}|(?:{_SAME_VALUE}){_END}(?!{_KEY_END})){_TYPED}{_AFTER}",
    re.MULTILINE,
)
# rapidyaml writes a key that reads as infinity or NaN as ".inf", "-.inf" or ".nan", quoted or
# not (its JSON emitter, json_maybe_write_naninf_); on the text in lower case.
_NANINF_KEY = re.compile(r"(?:^|(?<=[\s\[{,'\"]))[-+]?\.?(?:inf|nan|infinity)['\"]?[ ]*:(?=[\s,\]}]|\Z)", re.MULTILINE)
# Running that on a whole dump takes seconds; these find, at C speed, every place where such a
# scalar may stand (each has a mark none read the same has), and only their lines are checked.
_BOUND = r"[\s\[{,:]"  # ":" for "a":yes
_PROBES = tuple(
    re.compile(p)
    for p in (
        *(f"{word}{_AFTER}" for word in ("True", "TRUE", "False", "FALSE", "Null", "NULL")),
        r"0[xb](?<=[\s\[{,:+\-]0[xb])",  # hexadecimal, binary
        r"0(?=[0-9_])(?<=[\s\[{,:+\-]0)",  # octal, a leading zero
        r"\.(?<=[\s\[{,:+\-]\.)",  # .5, -.5, .inf, .nan
        # one pass over the colons: sexagesimal 1:30, a number or null as a key
        r":(?:(?<=[0-9]:)(?=[0-9])|(?<=[0-9. ]:)(?=[\s,\]}]|\Z)|(?<=null:))",
        f"true(?={_KEY_END})",
        f"false(?={_KEY_END})",
    )
)
_LOWER_PROBES = tuple(  # on the text in lower case: yes, Yes and YES alike
    re.compile(p)
    for p in (
        f"yes(?<={_BOUND}yes){_AFTER}",
        f"no(?<={_BOUND}no){_AFTER}",
        f"on(?<={_BOUND}on){_AFTER}",
        f"off(?<={_BOUND}off){_AFTER}",
        r"inf(?<=[\s\[{,:+\-.'\"]inf)",
        r"nan(?<=[\s\[{,:+\-.'\"]nan)",
        r"e(?<=[0-9.]e)(?=[-+]?[0-9])",  # an exponent
    )
)
_MARK_PROBES = {  # run only where the text has the byte at all
    ord("~"): re.compile(f"~(?<={_BOUND}~){_AFTER}"),
    ord("="): re.compile(f"=(?<={_BOUND}=){_AFTER}"),
    ord("<"): re.compile(f"<<(?<={_BOUND}<<)"),
    ord("+"): re.compile(r"\+(?<=[\s\[{,:]\+)"),
    ord("_"): re.compile(r"_(?<=[0-9._]_)"),  # 1_000
}
# What sends a text to the exact path wherever it stands (each pattern starts with the character
# it is about, which the regular expression engine finds at C speed), with the bytes without
# which it cannot match.
_REFUSED = tuple(
    (frozenset(marks.encode()), re.compile(pattern, re.MULTILINE))
    for marks, pattern in (
        # a tag, an anchor, an alias, an explicit key, a directive, what cannot start a token
        *((c, rf"\{c}(?<=[\s\[{{,]\{c})") for c in "!&*?%@`"),
        # a flow indicator where a scalar would start (libyaml refuses it, rapidyaml reads a string)
        ("]", r"\](?<=[\s,]\])"),
        ("}", r"}(?<=[\s,]})"),
        (",", r",(?<=[\s\[{,],)"),
        # a block scalar header but for its chomping indicator: rapidyaml ignores what else follows
        # | or >, and with an indentation indicator keeps lines of blanks where libyaml does not
        *((c, rf"\{c}(?<=[\s\[{{,]\{c})(?![-+]?(?:[ ]+#[^\n]*|[ ]*)$)") for c in "|>"),
        # in a flow collection, libyaml ends a plain scalar at ":" before , [ ] { } and takes " #"
        # for a comment; rapidyaml does neither
        ("[{", r":[,\[\]{}](?<=[^\s\"':]:[,\[\]{}])"),
        ("[", r"\[[^\n]*[ ]#"),
        ("{", r"{[^\n]*[ ]#"),
        ("", r":(?:(?<=[\s\[{,]:)|(?<=['\"]:)(?=[:,\]}#]))"),  # an empty key; "a":: and the like after a quoted key
        ("", r"\.\.\.(?<=\n\.\.\.)(?=\s|\Z)"),  # a document end: libyaml wants "---" after it, rapidyaml does not
        ("", r"\n[^\n]{1025}"),  # a line too long for a key of libyaml's
    )
)
# A quoted key: libyaml refuses one over several lines (an implicit key is on one line),
# rapidyaml reads it. Its closing quote is then the only one of its kind on its line before it.
_QUOTED_KEYS = tuple(re.compile(rf"{q}(?=[ ]*:(?:[\s,\]}}]|\Z))") for q in "\"'")


def _multiline_key(text: str) -> bool:
    for pattern in _QUOTED_KEYS:
        for m in pattern.finditer(text):
            quote, at = m.group(), m.start()
            if text.count(quote, text.rfind("\n", 0, at) + 1, at) % 2 == 0:
                return True
    return False


# Characters PyYAML's reader refuses or takes for line breaks (NEL, LS, PS), and the BOM.
_UNREAD = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_MARKS = frozenset(b"!&*?%@`|>]},[{'\"") | frozenset(_MARK_PROBES)
_PLAIN_BYTES = bytes(b for b in range(256) if b == 10 or (32 <= b < 127 and b not in _MARKS))


def _for_fast_path(text: str, utf8: bytes | bytearray) -> bool:
    """Whether rapidyaml reads this YAML text as PyYAML does (see the module's doc)."""
    if not text.endswith("\n"):  # a block scalar at the very end: its last line break differs
        return False
    if text[0] in "!&*?%@`:|>]},." or not 0 <= text.find("\n") <= 1024:  # the checks below look before what they find
        return False
    rare = set(utf8.translate(None, _PLAIN_BYTES))  # the bytes of a typical dump are mostly plain
    if rare and (any(b < 32 or b == 127 for b in rare) or (max(rare) > 127 and _UNREAD.search(text))):
        return False  # TAB, CR, other controls; what PyYAML refuses
    if any((not marks or marks & rare) and pattern.search(text) for marks, pattern in _REFUSED):
        return False
    if rare & frozenset(b"'\"") and _multiline_key(text):
        return False
    lower = text.lower()
    if len(lower) != len(text):  # a character whose lower case is longer: offsets would differ
        return False
    probes = [(p, text) for p in _PROBES] + [(p, lower) for p in _LOWER_PROBES]
    probes += [(p, text) for b, p in _MARK_PROBES.items() if b in rare]
    # The probes look at the character before a scalar: the first line has none, it is checked.
    starts = (text.rfind("\n", 0, m.start()) + 1 for probe, where in probes for m in probe.finditer(where))
    checked: set[int] = set()
    for start in itertools.chain((0,), starts):
        if start not in checked:
            checked.add(start)
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            if _DIFFERENT.search(text, start, end) or _NANINF_KEY.search(lower, start, end):
                return False
    return True


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a YAML text as load's exact path constructs them (None for an empty
    one), or None where that path must decide."""
    if not _for_fast_path(text, text.encode("utf-8")):
        return None
    split = _split_items(text)
    if split is None:
        return _read_yaml(text)
    rest, runs = split
    documents = _read_yaml(rest)
    if documents is None or len(documents) != 1 or not isinstance(documents[0], dict) or documents[0].get("items") != []:
        return None
    items: list[Any] = []
    for run in runs:
        found = _read_yaml(run)
        if found is None or len(found) != 1 or not isinstance(found[0], list):
            return None
        items += found[0]
    documents[0]["items"] = items
    return documents


# A dump is one List document, its items a block sequence at column 0 after "items:". rapidyaml's
# tree takes ~140 bytes a node (~300 MB for 10,000 Services): the items are read a few hundred at
# a time. A line "- " at column 0 within them starts an item, or is inside a quoted scalar split
# over lines: cut there, both parts are unterminated, and rapidyaml refuses them.
# (Each pattern starts with the line break before its line: a literal, found at C speed.)
_ITEMS = re.compile(r"\nitems:[ ]*\n(?=-[ \n])")
_ITEM = re.compile(r"\n-(?=[ \n])")
_AFTER_ITEMS = re.compile(r"\n(?![-#\s])|\n-(?![ \n])")  # a line at column 0 that is no item, comment or blank
_DOCUMENT_MARK = re.compile(r"\n(?:---|\.\.\.)(?=\s|\Z)")
_ITEMS_A_RUN = 500


def _split_items(text: str) -> tuple[str, list[str]] | None:
    """The text with its List's items replaced by [], and the items' text in runs; None for any
    other text (several documents, several lists)."""
    text = "\n" + text  # the first line has a line break before it too
    found = _ITEMS.search(text)
    if found is None or _ITEMS.search(text, found.end() - 1) or _DOCUMENT_MARK.search(text):
        return None
    after = _AFTER_ITEMS.search(text, found.end() - 1)
    end = after.start() + 1 if after else len(text)
    starts = [m.start() + 1 for m in _ITEM.finditer(text, found.end() - 1, end)][::_ITEMS_A_RUN] + [end]
    runs = [text[a:b] for a, b in zip(starts, starts[1:])]
    return text[1 : found.end() - 1] + " []\n" + text[end:], runs


def _read_yaml(text: str) -> list[Any] | None:
    """The documents of a YAML text already found fit for the fast path, read by rapidyaml."""
    import ryml  # rapidyaml: imported by the only function that needs it (~20 ms)

    buffer = bytearray(text, "utf-8")  # the tree points into it: kept until the tree is gone
    try:
        with quiet_stderr():  # rapidyaml prints its errors before raising them
            tree = ryml.parse_in_place(buffer)
        root = tree.root_id()
        docs = list(ryml.children(tree)) if tree.is_stream(root) else [root]
        texts = [ryml.emit_json(tree, doc) for doc in docs]
    except Exception:  # noqa: BLE001 - any refusal of rapidyaml's: the exact path says why
        return None
    del tree, buffer
    if not all(isinstance(t, str) for t in texts):  # a document rapidyaml made nothing of
        return None
    values: list[Any] = []
    # Each read as the JSON fast path reads a text: None for no JSON (control characters,
    # surrogates) or for a key dropped.
    for t in texts:
        found = json_documents(t)
        if found is None:
            return None
        values += found
    return values


