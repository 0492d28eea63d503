"""The kernel transport against the real kernel, in throwaway network namespaces (root only):
apply is atomic and incremental, a refused transaction changes nothing and names its Service,
applies are serialized, missing privileges give one sentence, delete spares other tables."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from svcctl.kernel import LOCK_DIR, Refused, in_throwaway_netns
from svcctl.nftables import transaction as tx, transport
from svcctl.nftables.nft import Nft
from svcctl.options import build_options
from svcctl.pipeline import compile_rules
from svcctl.sources import read_manifests

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (network namespaces)"
)
SVCCTL = str(Path(sys.executable).parent / "svcctl")
EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "web.yaml")
NODE = ["--node-name", "node-1", "--cluster-cidr", "10.244.0.0/16"]


def run_in(ns: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if user == "nobody" else []
    return subprocess.run(["ip", "netns", "exec", ns, *prefix, *args], capture_output=True, text=True, timeout=120)


def listing(ns: str) -> str:
    return run_in(ns, "nft", "list", "ruleset").stdout


def test_apply_creates_then_sends_nothing_for_the_same_manifest(netns):
    first = run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE)
    assert (first.returncode, first.stdout) == (0, "applied: created ip svcctl and ip6 svcctl\n"), first.stderr
    before = listing(netns)
    again = run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE)
    assert (again.returncode, again.stdout) == (0, "unchanged: the kernel already holds this ruleset\n")
    assert listing(netns) == before
    assert run_in(netns, SVCCTL, "diff", EXAMPLE, *NODE).returncode == 0


def test_changed_node_options_replace_the_table_and_diff_follows(netns):
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    other = ["--node-name", "node-2", "--cluster-cidr", "10.244.0.0/16"]  # other local endpoints
    diff = run_in(netns, SVCCTL, "diff", EXAMPLE, *other)
    assert diff.returncode == 1 and "-\t\t\t10.244.1.2 . 10.244.1.2" in diff.stdout  # hairpin set shrinks
    update = run_in(netns, SVCCTL, "apply", EXAMPLE, *other)
    assert update.stdout.startswith("applied: ip: "), update.stdout  # elements only: an update
    assert run_in(netns, SVCCTL, "diff", EXAMPLE, *other).returncode == 0
    replaced = run_in(netns, SVCCTL, "apply", EXAMPLE, "--node-name", "node-2", "--masquerade-all")
    assert "replaced ip svcctl and ip6 svcctl" in replaced.stdout  # other hook rules: a new frame


def test_dry_run_changes_nothing_and_prints_the_diff(netns):
    dry = run_in(netns, SVCCTL, "apply", "--dry-run", EXAMPLE, *NODE)
    assert dry.returncode == 0, dry.stderr
    assert "+table ip svcctl {" in dry.stdout and "dry run: the kernel accepts the ruleset" in dry.stderr
    assert listing(netns) == ""


def test_a_refused_transaction_changes_nothing_and_names_its_service(netns):
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    before = listing(netns)
    options = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16"]})
    ruleset = compile_rules(read_manifests([EXAMPLE]), options)[2].rules
    # Corrupt the plan the way a bug would: a pick pointing at an affinity set that does not exist.
    table = ruleset.tables[0]
    chain = next(c for c in table.endpoint_chains if "shop/web" in c.name)
    bad_pick = chain.picks[0]._replace(affinity="aff-AAAAAAAA-shop/web/tcp/http/missing")
    bad_chain = dataclasses.replace(chain, name=chain.name + "-x", picks=(bad_pick, *chain.picks[1:]), affinity_timeout=5)
    bad_table = dataclasses.replace(table, endpoint_chains=(*table.endpoint_chains, bad_chain))
    bad = dataclasses.replace(ruleset, tables=(bad_table, *ruleset.tables[1:]))

    with pytest.raises(Refused) as refused:
        subprocess_apply(netns, bad)
    message = refused.value.describe()
    assert message.startswith("the kernel refused the ruleset, nothing was changed: Error: ")
    assert "at line " in message and "aff-AAAAAAAA-shop/web/tcp/http/missing" in message  # the refused rule, quoted
    assert message.endswith("(Service shop/web port http/tcp)")
    assert listing(netns) == before


def test_new_chains_of_a_refused_second_commit_are_deleted_again(netns):
    """New chains are committed first, then what points at them (transaction.stages); when the
    second commit is refused, the first is taken back and the kernel holds what it held."""
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    before = listing(netns)
    options = build_options({"node-name": "node-2", "cluster-cidr": ["10.244.0.0/16"], "masquerade-all": True})
    table = compile_rules(read_manifests([EXAMPLE]), options)[2].rules.tables[0]
    ref = tx.TableRef(table.family, table.name)
    chain = dataclasses.replace(table.endpoint_chains[0], name=table.endpoint_chains[0].name + "-new")
    operations = (tx.AddObjects(ref, (), (chain,), ()), tx.DeleteChain(ref, "svc-missing"))
    assert len(tx.stages(operations)) == 2
    with pytest.raises(Refused, match="svc-missing"):
        in_netns(netns, lambda: transport.send(Nft(), operations))
    assert listing(netns) == before


def subprocess_apply(ns: str, ruleset) -> None:
    in_netns(ns, lambda: transport.apply(ruleset))


def in_netns(ns: str, call) -> None:
    """``call()`` inside ``ns``: libnftables talks to the namespace it was created in, so the
    call runs in a child that joined the namespace first."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)

    def in_ns() -> None:
        os.setns(fd, os.CLONE_NEWNET) if hasattr(os, "setns") else _setns(fd)
        call()

    try:
        in_throwaway_netns(in_ns)
    finally:
        os.close(fd)


def _setns(fd: int) -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def test_applies_are_serialized_by_the_lock(netns):
    lock = open(f"{LOCK_DIR}/svcctl-svcctl.lock", "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, SVCCTL, "apply", EXAMPLE, *NODE], stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)
        assert proc.poll() is None, "apply ran while another held the lock"
        assert listing(netns) == ""
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("applied: created")


@pytest.mark.parametrize("args", [["apply", EXAMPLE], ["apply", "--dry-run", EXAMPLE], ["diff", EXAMPLE], ["delete"]])
def test_without_privileges_one_sentence_and_exit_3(netns, args):
    result = run_in(netns, SVCCTL, *args, user="nobody")
    assert result.returncode == 3
    assert result.stderr == "svcctl: svcctl needs CAP_NET_ADMIN to read and change nftables rules: run it as root\n"


def test_delete_removes_only_svcctls_tables(netns):
    run_in(netns, "nft", "add table inet other; add chain inet other c; add table ip svcctlx")
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    gone = run_in(netns, SVCCTL, "delete")
    assert (gone.returncode, gone.stdout) == (0, "deleted: table ip svcctl and table ip6 svcctl\n")
    tables = run_in(netns, "nft", "list", "tables").stdout.split("\n")
    assert sorted(t for t in tables if t) == ["table inet other", "table ip svcctlx"]
    again = run_in(netns, SVCCTL, "delete")
    assert (again.returncode, again.stdout) == (0, "nothing to delete: no table named svcctl made by svcctl\n")


def test_a_table_of_the_same_name_that_svcctl_did_not_make_is_never_touched(netns):
    run_in(netns, "nft", "add table ip mine; add chain ip mine keep")
    refused = run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE, "--table", "mine")
    assert refused.returncode == 3
    assert refused.stderr == (
        "svcctl: table ip mine exists and was not made by svcctl (it has no frame-* marker set); "
        "svcctl leaves it alone: choose another --table\n"
    )
    kept = run_in(netns, SVCCTL, "delete", "--table", "mine")
    assert (kept.returncode, kept.stdout) == (0, "nothing to delete: no table named mine made by svcctl\n")
    assert kept.stderr == "svcctl: left table ip mine alone: svcctl did not make it\n"
    assert "chain keep" in run_in(netns, "nft", "list", "table", "ip", "mine").stdout


@pytest.mark.parametrize("content", ["", "counter hits { };", "quota q { 10 mbytes };", "limit l { rate 10/second; };"])
def test_a_table_svcctl_cannot_see_into_is_not_taken_over(netns, content):
    """A table of svcctl's name with no chain and no set (empty, or only stateful objects) looks absent to svcctl's listings: apply's `create table` is refused by the
    kernel, so the table is never taken over, and delete and diff leave it alone too."""
    made = run_in(netns, "nft", f"add table ip svcctl {{ {content} }}" if content else "add table ip svcctl")
    assert made.returncode == 0, made.stderr
    before = listing(netns)
    assert before.startswith("table ip svcctl {")
    for command in ("apply", "diff"):
        refused = run_in(netns, SVCCTL, command, EXAMPLE, *NODE)
        assert refused.returncode == 3, (command, refused)
        assert refused.stderr == (
            "svcctl: table ip svcctl exists and was not made by svcctl (it has no frame-* marker set); "
            "svcctl leaves it alone: choose another --table\n"
        ), (command, refused.stderr)
        assert refused.stdout == ""
    dry = run_in(netns, SVCCTL, "apply", "--dry-run", EXAMPLE, *NODE)
    assert dry.returncode == 3 and "was not made by svcctl" in dry.stderr
    assert run_in(netns, SVCCTL, "delete").stdout == "nothing to delete: no table named svcctl made by svcctl\n"
    assert listing(netns) == before


def test_a_hook_chain_deleted_by_hand_is_restored_by_the_next_apply(netns):
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    run_in(netns, "nft", "delete chain ip svcctl nat-postrouting")
    assert run_in(netns, SVCCTL, "diff", EXAMPLE, *NODE).returncode == 1
    repaired = run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE)
    assert repaired.stdout == "applied: reloaded ip svcctl (a hook chain was missing)\n", repaired.stdout
    assert run_in(netns, SVCCTL, "diff", EXAMPLE, *NODE).returncode == 0


def test_a_rule_edited_by_hand_inside_a_chain_is_repaired_by_apply_reload(netns):
    """apply reads only names and elements (a chain's name hashes its rules), so it cannot see a
    rule added inside a chain; diff reads the rules and shows it, and --reload rewrites it."""
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    chain = next(line.split()[1] for line in listing(netns).splitlines() if line.strip().startswith("chain svc-"))
    run_in(netns, "nft", f"insert rule ip svcctl {chain} drop")
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).stdout == "unchanged: the kernel already holds this ruleset\n"
    shown = run_in(netns, SVCCTL, "diff", EXAMPLE, *NODE)
    assert shown.returncode == 1 and "-\t\tdrop" in shown.stdout, shown.stdout
    repaired = run_in(netns, SVCCTL, "apply", "--reload", EXAMPLE, *NODE)
    assert (repaired.returncode, repaired.stdout) == (0, "applied: reloaded whole\n"), repaired.stderr
    assert run_in(netns, SVCCTL, "diff", EXAMPLE, *NODE).returncode == 0


def test_reserved_table_names_are_refused_before_anything_runs(netns):
    result = run_in(netns, SVCCTL, "apply", EXAMPLE, "--table", "nat")
    assert result.returncode == 2
    assert result.stderr == "command line: table: \"nat\" is the name of other tools' tables or an nft keyword: choose another\n"


def test_invalid_input_leaves_the_kernel_untouched(netns, tmp_path):
    assert run_in(netns, SVCCTL, "apply", EXAMPLE, *NODE).returncode == 0
    before = listing(netns)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {ports: [{port: 0}]}\n")
    result = run_in(netns, SVCCTL, "apply", str(bad), *NODE)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 3  # name, port, and targetPort (defaulted from port)
    assert listing(netns) == before

