"""The agent's inventory: every object its source reported, by origin, validated one by one.

Bad input never stops the agent, and never takes rules away that good input gave:

- An origin that does not parse (a broken file, a partial write) keeps the objects of its last
  good text; its problems are reported until it parses again.
- Each object is validated on its own, as the API server validates each create and update: a
  valid object is taken; an invalid one is reported, and the origin's last good version of it
  (same kind, namespace and name) stays, as the API server keeps the object when it refuses an
  update. Valid objects beside it are taken all the same.
- Across objects, what the API server would refuse as taken goes to whoever had it first: the
  same object in two origins, a cluster IP or a node port held by two Services. The object that
  was accepted earlier keeps it (at start, in origin order, then order within the origin); the
  other is left out and reported until the conflict is gone, then taken without further ado.

``apply`` returns the keys of the objects whose accepted version changed: the work after it (the
endpoints, the plan, the kernel) is done for those alone.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from ..load import Source as Text, parse_source
from ..model import Endpoints, EndpointSlice, Pod, Service
from ..options import NodePortRange
from ..problems import Problem
from ..validate import SERVICE_NAME_LABEL, Entry, check_object, held_values
from .source import Event, Gone, Put


class Key(NamedTuple):
    kind: str
    namespace: str
    name: str


def key_of(entry: Entry[Any]) -> Key:
    meta = entry.obj.metadata
    return Key(entry.obj.kind, meta.namespace, meta.name)


class _Winner(NamedTuple):
    entry: Entry[Any]
    since: int  # when its origin's version was first accepted


@dataclass
class _Origin:
    """One origin: its objects as last accepted (valid versions), and its own problems."""

    objects: dict[Key, Entry[Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


class State:
    """Accepted objects by key (``objects``) and indexes for endpoint resolution."""

    def __init__(self, node_ports: NodePortRange = NodePortRange()):
        self.node_ports = node_ports
        self._origins: dict[str, _Origin] = {}
        self._seq = itertools.count()
        self._holders: dict[Key, dict[str, int]] = defaultdict(dict)  # key -> origin -> when first accepted there
        self._held: dict[tuple[str, str | int], dict[Key, int]] = defaultdict(dict)  # value -> Service -> since
        self._winners: dict[Key, _Winner] = {}  # the version each key would have, before held values
        self._duplicates: dict[Key, list[Problem]] = {}  # the versions of other origins, left out
        self._left_out: dict[Key, Problem] = {}  # Services left out for a value another one holds
        self.objects: dict[Key, Entry[Any]] = {}
        # What endpoint resolution looks up: slices by (namespace, Service name), pods by
        # namespace, the Nodes' zones by name.
        self.slices: dict[tuple[str, str], dict[str, EndpointSlice]] = defaultdict(dict)
        self.pods: dict[str, dict[str, Pod]] = defaultdict(dict)
        self.zones: dict[str, str] = {}  # Node name -> its zone label ("" for none)

    # ---- reading ----------------------------------------------------------------------

    def service(self, namespace: str, name: str) -> Entry[Service] | None:
        return self.objects.get(Key("Service", namespace, name))

    def endpoints(self, namespace: str, name: str) -> Endpoints | None:
        entry = self.objects.get(Key("Endpoints", namespace, name))
        return entry.obj if entry else None

    def services(self) -> list[Entry[Service]]:
        return [e for k, e in self.objects.items() if k.kind == "Service"]

    def problems(self) -> list[Problem]:
        """Everything wrong with the input now, one problem per line to report."""
        out = [p for o in self._origins.values() for p in o.problems]
        out += [p for found in self._duplicates.values() for p in found]
        return out + list(self._left_out.values())

    # ---- changing ---------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> dict[Key, tuple[Entry[Any] | None, Entry[Any] | None]]:
        """Take the events (the latest per origin matters). Returns the objects whose accepted
        version changed: key -> (before, after), None for absent."""
        latest: dict[str, Put | Gone] = {}
        for event in events:
            if isinstance(event, (Put, Gone)):
                latest[event.origin] = event
        touched: set[Key] = set()
        for origin, event in latest.items():
            touched |= self._take(origin, event)
        return self._settle(touched)

    def _take(self, origin: str, event: Put | Gone) -> set[Key]:
        """Re-read one origin; the keys whose candidates changed."""
        old = self._origins.get(origin, _Origin())
        if isinstance(event, Gone):
            self._origins.pop(origin, None)
            new = _Origin()
        else:
            new = self._read(origin, event, old)
            self._origins[origin] = new
        touched = set()
        for key in old.objects.keys() | new.objects.keys():
            before, after = old.objects.get(key), new.objects.get(key)
            if before is after:
                continue
            touched.add(key)
            if after is None:
                self._holders[key].pop(origin, None)
            elif before is None:
                self._holders[key][origin] = next(self._seq)
        return touched

    def _read(self, origin: str, event: Put, old: _Origin) -> _Origin:
        if event.error:
            return _Origin(old.objects, [Problem(event.error, file=origin)])
        raw, problems = parse_source(Text(origin, event.text, event.is_json))
        if problems:  # not parseable (yet): the last good content stays
            return _Origin(old.objects, problems)
        objects: dict[Key, Entry[Any]] = {}
        seen: dict[Key, Entry[Any]] = {}
        skipped: list[Any] = []
        for item in raw:
            entry = check_object(item, problems, skipped, self.node_ports)
            if entry is None:
                key = _raw_key(item.data)
                if key is not None and key in old.objects and key not in objects:
                    objects[key] = old.objects[key]  # the update is refused: the last good version stays
                continue
            key = key_of(entry)
            if key in seen:
                where = seen[key].origin
                problems.append(
                    Problem(
                        f"Duplicate value: {key.kind} {entry.obj.ref} is already defined at {where.source.name}:{where.line}",
                        ("metadata", "name"), entry.origin, key.kind, entry.obj.ref,
                    )
                )
                continue
            seen[key] = entry
            before = old.objects.get(key)
            # The same content again keeps the same Entry: nothing after this sees a change.
            objects[key] = before if before is not None and before.obj == entry.obj else entry
        return _Origin(objects, problems)

    def _settle(self, touched: set[Key]) -> dict[Key, tuple[Entry[Any] | None, Entry[Any] | None]]:
        """Decide the accepted version of every touched key, and of the Services whose held
        values (cluster IPs, node ports) a touched Service holds or held."""
        contested: set[Key] = set()
        for key in touched:
            was = self._winners.get(key)
            now = self._winner_of(key)
            if key.kind == "Service":
                if was is not None:
                    for held in held_values(was.entry.obj):
                        holders = self._held[held.key]
                        holders.pop(key, None)
                        contested |= holders.keys()
                        if not holders:
                            del self._held[held.key]
                if now is not None:
                    for held in held_values(now.entry.obj):
                        self._held[held.key][key] = now.since
                        contested |= self._held[held.key].keys()
            if now is None:
                self._winners.pop(key, None)
            else:
                self._winners[key] = now

        changes: dict[Key, tuple[Entry[Any] | None, Entry[Any] | None]] = {}
        for key in touched | contested:
            first = self._winners.get(key)
            accepted = first.entry if first is not None else None
            self._left_out.pop(key, None)
            if first is not None and key.kind == "Service":
                problem = self._blocked(key, first)
                if problem is not None:
                    self._left_out[key] = problem
                    accepted = None
            before = self.objects.get(key)
            if before is not accepted:
                changes[key] = (before, accepted)
                self._index(key, before, accepted)
        return changes

    def _winner_of(self, key: Key) -> _Winner | None:
        """The origin that had the object first, and its version; the others are reported."""
        self._duplicates.pop(key, None)
        holders = self._holders.get(key)
        if not holders:
            self._holders.pop(key, None)
            return None
        origin = min(holders, key=lambda o: (holders[o], o))
        first = self._origins[origin].objects[key]
        where = first.origin
        self._duplicates[key] = [
            Problem(
                f"Duplicate value: {key.kind} {first.obj.ref} is already defined at {where.source.name}:{where.line}",
                ("metadata", "name"), entry.origin, key.kind, entry.obj.ref,
            )
            for entry in (self._origins[o].objects[key] for o in sorted(holders) if o != origin)
        ]
        return _Winner(first, holders[origin])

    def _blocked(self, key: Key, winner: _Winner) -> Problem | None:
        """Why a Service is left out: a value it holds that another Service held first."""
        for held in held_values(winner.entry.obj):
            other, since = min(self._held[held.key].items(), key=lambda kv: (kv[1], kv[0]))
            if (since, other) < (winner.since, key):
                return Problem(held.taken_by(f"{other.namespace}/{other.name}"), held.path, winner.entry.origin, key.kind, winner.entry.obj.ref)
        return None

    def _index(self, key: Key, before: Entry[Any] | None, after: Entry[Any] | None) -> None:
        if after is None:
            del self.objects[key]
        else:
            self.objects[key] = after
        if key.kind == "EndpointSlice":
            for entry, present in ((before, False), (after, True)):
                owner = entry.obj.metadata.labels.get(SERVICE_NAME_LABEL) if entry else None
                if owner:
                    group = self.slices[(key.namespace, owner)]
                    if present:
                        group[key.name] = entry.obj  # type: ignore[union-attr]
                    else:
                        group.pop(key.name, None)
                        if not group:
                            del self.slices[(key.namespace, owner)]
        elif key.kind == "Pod":
            if after is None:
                self.pods[key.namespace].pop(key.name, None)
            else:
                self.pods[key.namespace][key.name] = after.obj
        elif key.kind == "Node":
            if after is None:
                self.zones.pop(key.name, None)
            else:
                self.zones[key.name] = after.obj.zone



def _raw_key(data: dict[str, Any]) -> Key | None:
    """The key of an object that did not validate, where it can be told."""
    meta = data.get("metadata")
    kind = data.get("kind")
    if not isinstance(meta, dict) or not isinstance(kind, str) or not isinstance(meta.get("name"), str):
        return None
    namespace = meta.get("namespace") or "default"
    return Key(kind, namespace, meta["name"]) if isinstance(namespace, str) else None


