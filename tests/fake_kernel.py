"""An in-memory nftables for the apply decision's tests: fed a recorded ``nft -j list ruleset``
(tests/kernel/*.json, recorded from the real kernel by tests/kernel/record.py), it answers the
``list`` queries svcctl.nftables.live reads through, and applies a typed transaction
(svcctl.nftables.transaction) to a copy that it keeps only if every operation succeeded, as
the kernel commits a batch or nothing.

It models what svcctl reads (tables, chain and set names, set elements, which chains a chain or
a map element jumps to), not rule semantics: the real kernel proves those in the namespace tests.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svcctl.kernel import Refused
from svcctl.nftables import transaction as tx
from svcctl.nftables.frame import FRAME_CHAINS
from svcctl.nftables.objects import Element, EndpointChain, ExternalChain, Table
from svcctl.nftables.render import frame_name

RECORDINGS = Path(__file__).resolve().parent / "kernel"


@dataclass
class FakeSet:
    kind: str  # "set" or "map"
    type: Any
    flags: list[str] = field(default_factory=list)
    elements: dict[Any, Any] = field(default_factory=dict)  # JSON key (hashable form) -> JSON verdict or None


@dataclass
class FakeTable:
    chains: dict[str, set[str]] = field(default_factory=dict)  # chain -> chains its rules jump to, "@sets" they use
    sets: dict[str, FakeSet] = field(default_factory=dict)
    other: int = 0  # counters, quotas, ...: objects svcctl cannot see with its listings


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True)


def _targets(rule: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("jump", "goto") and isinstance(value, dict):
                    found.add(value["target"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and node.startswith("@"):
            found.add(node)

    walk(rule.get("expr", []))
    return found


class FakeKernel:
    def __init__(self, recording: str | None = None) -> None:
        self.tables: dict[tuple[str, str], FakeTable] = {}
        self.sent: list[tx.Transaction] = []
        if recording:
            self.load_listing(json.loads((RECORDINGS / recording).read_text()))

    # ---- filling from a recorded listing -----------------------------------------------------

    def load_listing(self, listing: dict[str, Any]) -> None:
        for obj in listing["nftables"]:
            (kind, body), = obj.items()
            if kind == "metainfo":
                continue
            key = (body["family"], body.get("table", body.get("name")))
            if kind == "table":
                self.tables.setdefault((body["family"], body["name"]), FakeTable())
            elif kind == "chain":
                self.tables[key].chains.setdefault(body["name"], set())
            elif kind == "rule":
                self.tables[key].chains[body["chain"]] |= _targets(body)
            elif kind in ("set", "map"):
                elements = {}
                for elem in body.get("elem", []):
                    if kind == "map":
                        elements[_hashable(elem[0])] = elem[1]
                    else:
                        elements[_hashable(elem)] = None
                self.tables[key].sets[body["name"]] = FakeSet(kind, body["type"], body.get("flags", []), elements)
            else:
                self.tables[key].other += 1

    # ---- svcctl.nftables.live.Reader ----------------------------------------------------------

    def query(self, command: str, terse: bool = False) -> list[dict[str, Any]]:
        words = command.split()
        assert words[0] == "list", command
        what, args = words[1], words[2:]
        out: list[dict[str, Any]] = []
        if what in ("chains", "sets", "maps"):
            kind = what[:-1]
            for (family, name), table in sorted(self.tables.items()):
                if args and args[0] != family:
                    continue
                if kind == "chain":
                    out += [{"chain": {"family": family, "table": name, "name": c}} for c in sorted(table.chains)]
                else:
                    out += [{kind: self._set_json(family, name, n, s, terse)} for n, s in sorted(table.sets.items()) if s.kind == kind]
            return out
        if what in ("set", "map"):
            family, name, set_name = args
            table = self.tables.get((family, name))
            s = table.sets.get(set_name) if table else None
            return [{what: self._set_json(family, name, set_name, s, terse)}] if s and s.kind == what else []
        raise AssertionError(f"the fake kernel does not know {command!r}")

    def _set_json(self, family: str, table: str, name: str, s: FakeSet, terse: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"family": family, "name": name, "table": table, "type": s.type}
        if s.flags:
            body["flags"] = s.flags
        if s.elements and not terse:
            body["elem"] = [[json.loads(k), v] if s.kind == "map" else json.loads(k) for k, v in s.elements.items()]
        return body

    # ---- applying a transaction: all or nothing -----------------------------------------------

    def apply(self, transaction: tx.Transaction) -> None:
        """Commit the transaction's stages (transaction.stages) one after the other, as
        svcctl.nftables.transport.send does."""
        for stage in tx.stages(transaction.operations):
            self.commit(stage)
        self.sent.append(transaction)

    def commit(self, operations: tuple[tx.Operation, ...]) -> None:
        """One commit, all or nothing. Besides what the kernel refuses, it refuses what would
        let a packet in flight fall through: in a table that outlives the commit, a map element
        pointing at a chain created in the same commit (transaction.stages)."""
        work = copy.deepcopy(self.tables)
        deleted: set[tuple[str, str]] = set()
        for op in operations:
            if isinstance(op, tx.DeleteTable):
                deleted.add((op.table.family.value, op.table.name))
            _apply(work, op)
        for key, table in work.items():
            before = self.tables.get(key)
            if before is None or key in deleted:
                continue  # a new table: its base chains ran no rules in the old generation
            for set_name, s in table.sets.items():
                for verdict in s.elements.values():
                    target = _verdict_target(verdict)
                    if target and target not in before.chains:
                        raise _refuse(f"map {set_name} points at chain {target} created in the same commit")
        self.tables = work


def _verdict_target(verdict: Any) -> str | None:
    if not isinstance(verdict, dict):
        return None
    body = next(iter(verdict.values()))
    return body.get("target") if isinstance(body, dict) else None


def _refuse(message: str) -> Refused:
    return Refused(f"fake kernel: {message}", "")


def _key_json(family: str, key: tuple[str, ...]) -> Any:
    """A planned key as the kernel lists it (ports as numbers, prefixes split)."""
    parts: list[Any] = []
    for part in key:
        if part.isdigit():
            parts.append(int(part))
        elif "/" in part:
            addr, length = part.split("/")
            parts.append({"prefix": {"addr": addr, "len": int(length)}})
        else:
            parts.append(part)
    return parts[0] if len(parts) == 1 else {"concat": parts}


def _verdict_json(el: Element) -> Any:
    if el.verdict is None:
        return None
    return {el.verdict.kind.value: {"target": el.verdict.chain}} if el.verdict.chain else {el.verdict.kind.value: None}


def _load(work: dict[tuple[str, str], FakeTable], t: Table) -> None:
    table = work.setdefault((t.family.value, t.name), FakeTable())
    for name in table.chains:
        table.chains[name] = set()  # flush table: every rule goes
    for c in FRAME_CHAINS:
        table.chains[c.name] = set()
    for c in t.endpoint_chains:
        table.chains[c.name] = _uses(c)
    for e in t.external_chains:
        table.chains[e.name] = _uses(e)
    table.sets.setdefault(frame_name(t), FakeSet("set", "inet_service"))
    for s in t.sets:
        existing = table.sets.get(s.name)
        if existing is None or not s.dynamic:
            table.sets[s.name] = FakeSet("map" if s.is_map else "set", list(s.key_type))
        target = table.sets[s.name]
        if not s.dynamic:
            target.elements = {_hashable(_key_json(t.family.value, el.key)): _verdict_json(el) for el in s.elements}


def _uses(chain: EndpointChain | ExternalChain) -> set[str]:
    if isinstance(chain, ExternalChain):
        return {n for n in (chain.pods_to, chain.node_to, chain.then_to) if n}
    return {f"@{p.affinity}" for p in chain.picks if p.affinity}


def _referenced(table: FakeTable, name: str) -> bool:
    """A chain some rule or map element jumps to, or (``@name``) a set some rule uses."""
    if any(name in uses for chain, uses in table.chains.items() if chain != name):
        return True
    return any(v and name in json.dumps(v) for s in table.sets.values() for v in s.elements.values())


def _apply(work: dict[tuple[str, str], FakeTable], op: tx.Operation) -> None:
    family = op.table.family.value
    key = (family, op.table.name)
    if isinstance(op, tx.CreateTable):
        if key in work:
            raise _refuse(f"create table {family} {op.table.name}: File exists")
        work[key] = FakeTable()
        return
    if isinstance(op, tx.LoadTable):
        _load(work, op.table)
        return
    table = work.get(key)
    if table is None:
        raise _refuse(f"table {family} {op.table.name}: No such file or directory")
    if isinstance(op, tx.DeleteTable):
        del work[key]
    elif isinstance(op, tx.AddObjects):
        for s in op.sets:
            table.sets.setdefault(s.name, FakeSet("set", list(s.key_type)))
        for c in (*op.endpoint_chains, *op.external_chains):
            table.chains[c.name] = _uses(c)
    elif isinstance(op, (tx.AddElements, tx.DeleteElements)):
        target = table.sets.get(op.set.name)
        if target is None:
            raise _refuse(f"set {op.set.name}: No such file or directory")
        for el in op.elements:
            k = _hashable(_key_json(family, el.key))
            if isinstance(op, tx.DeleteElements):
                if k not in target.elements:
                    raise _refuse(f"delete element {el.key} from {op.set.name}: No such file or directory")
                del target.elements[k]
            else:
                for name in [el.verdict.chain] if el.verdict and el.verdict.chain else []:
                    if name not in table.chains:
                        raise _refuse(f"element {el.key} jumps to missing chain {name}")
                target.elements[k] = _verdict_json(el)
    elif isinstance(op, tx.DeleteChain):
        if op.name not in table.chains:
            raise _refuse(f"delete chain {op.name}: No such file or directory")
        if _referenced(table, op.name):
            raise _refuse(f"delete chain {op.name}: Device or resource busy")
        del table.chains[op.name]
    elif isinstance(op, tx.DeleteSet):
        if op.name not in table.sets:
            raise _refuse(f"delete set {op.name}: No such file or directory")
        if _referenced(table, f"@{op.name}"):
            raise _refuse(f"delete set {op.name}: Device or resource busy")
        del table.sets[op.name]
    else:
        raise AssertionError(op)
