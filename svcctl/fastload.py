"""C-speed parsing of the manifests most often fed to svcctl: kubectl dumps of a whole cluster.

``load`` parses every text exactly, with positions: Python's JSON decoder item by item, PyYAML's
composer and constructor (12 s for the YAML dump of 10,000 Services). This module and
svcctl.fastyaml read the same texts with compiled parsers, msgspec for JSON and rapidyaml for YAML
(which writes what it read as JSON, read by msgspec in turn), and give the documents' values only where they are the
values the exact path gives. Anything they cannot vouch for gives None, and ``load`` takes its
exact path: errors are always reported by it, with its messages and positions.

What is vouched for, and how:

- A key given twice in one mapping: msgspec keeps the last one silently. Each key of a JSON text
  stands before one ``:`` outside strings, and a string holds the colons it shows (``\\u003a``,
  the only other spelling, sends the text to the exact path). Encoding the decoded values again
  gives a text with one colon per key kept and the same colons in strings; each key dropped
  takes at least its own colon with it. So the counts are equal exactly when none was dropped.
  orjson encodes: it refuses integers beyond 64 bits and nesting deeper than 254 levels, which
  leaves those (rare) texts to the exact path, whose limits (Python's recursion limit, about
  1,000 levels; 4,300 digits) then decide as before.
- YAML 1.1 as PyYAML (and kubectl's go-yaml) reads it: see svcctl.fastyaml.

``tests/test_fastload.py`` compares both paths on every file of the corpus, the hostile inputs,
the golden manifests and on random documents made to hit what the parsers read differently.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import msgspec
import orjson


def json_documents(text: str) -> list[Any] | None:
    """The documents of a JSON text (kubectl prints one), as load's exact path decodes them; None
    where that path must decide: invalid JSON, several documents, what is described above."""
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    return [value] if keys_kept(text, [value]) else None


def keys_kept(text: str, values: list[Any]) -> bool:
    """Whether decoding ``text`` into ``values`` dropped no key (see the module's doc)."""
    if "\\u003" in text:  # \u003a or \u003A (and, needlessly, \u0030 to \u003f): one search
        return False
    colons = 0
    try:
        for value in values:
            # A List's items one by one: never one more copy of the whole dump in memory.
            items = value.get("items") if isinstance(value, dict) else None
            if isinstance(items, list):
                colons += orjson.dumps({**value, "items": []}).count(b":")
                colons += sum(orjson.dumps(item).count(b":") for item in items)
            else:
                colons += orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:
        return False
    return colons == text.count(":")


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Standard error (file descriptor 2) held back for a while: what was written to it meanwhile
    (by other threads: svcctl run logs there) is passed on, unless the block raised (then it
    holds rapidyaml's own message, dropped with it)."""
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to quiet
        yield
        return
    held = os.memfd_create("svcctl-stderr")
    try:
        os.dup2(held, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
        os.lseek(held, 0, os.SEEK_SET)
        while chunk := os.read(held, 1 << 16):
            os.write(2, chunk)
    finally:
        os.close(held)
        os.close(saved)
