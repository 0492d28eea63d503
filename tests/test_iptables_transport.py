"""The iptables back end against the real kernel, with both flavours, in throwaway network
namespaces (root only): apply sends only what changed and nothing for an unchanged manifest; a
refused table is undone with those committed before it and names its Service; dry-run changes
nothing; applies are serialized, the xtables lock is honoured; the flavour is detected as
kube-proxy's image detects it; missing privileges or programs give one sentence and exit 3."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from svcctl.kernel import LOCK_DIR

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None
    or any(shutil.which(f"{f}-{m}-{a}") is None for f in ("iptables", "ip6tables") for m in ("nft", "legacy") for a in ("save", "restore")),
    reason="needs root, iproute2 and iptables (both flavours)",
)
SVCCTL = str(Path(sys.executable).parent / "svcctl")
EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "web.yaml")
NODE = ["--node-name", "node-1", "--cluster-cidr", "10.244.0.0/16"]
FLAVOURS = ("nft", "legacy")


def run_in(ns: str, *args: str, user: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if user == "nobody" else []
    prefix += ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
    return subprocess.run(["ip", "netns", "exec", ns, *prefix, *args], capture_output=True, text=True, timeout=120)


def svcctl(ns: str, command: str, flavour: str | None, *args: str, **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    mode = ["--iptables-mode", flavour] if flavour else []
    return run_in(ns, SVCCTL, command, "--backend", "iptables", *mode, *args, **kwargs)


def saved(ns: str, flavour: str) -> str:
    out = "".join(run_in(ns, f"{f}-{flavour}-save").stdout for f in ("iptables", "ip6tables"))
    return "".join(line for line in out.splitlines(keepends=True) if not line.startswith("#"))


def rules(ns: str, flavour: str) -> list[str]:
    """Every rule and chain, by table; not the tables themselves (iptables makes them when first
    used and never removes them) nor built-in chains with their default policy."""
    table, out = "", []
    for line in saved(ns, flavour).splitlines():
        if line.startswith("*"):
            table = line
        elif line.startswith("-A") or (line.startswith(":") and " ACCEPT " not in line):
            out.append(f"{table} {line}")
    return out


def without_web(tmp_path: Path) -> str:
    """The example without Service shop/web (and its pods): its chains go, and so do its filter rules."""
    text = Path(EXAMPLE).read_text()
    kept = [doc for doc in text.split("\n---\n") if "name: web" not in doc]
    path = tmp_path / "without-web.yaml"
    path.write_text("\n---\n".join(kept))
    return str(path)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_apply_creates_then_sends_nothing_and_diff_is_empty(netns, flavour):
    first = svcctl(netns, "apply", flavour, EXAMPLE, *NODE)
    assert (first.returncode, first.stdout) == (0, f"applied: created svcctl's chains in ip and ip6 (iptables-{flavour})\n"), first.stderr
    before = saved(netns, flavour)
    again = svcctl(netns, "apply", flavour, EXAMPLE, *NODE)
    assert (again.returncode, again.stdout) == (0, "unchanged: the kernel already holds this ruleset\n")
    assert saved(netns, flavour) == before
    diff = svcctl(netns, "diff", flavour, EXAMPLE, *NODE)
    assert (diff.returncode, diff.stdout) == (0, "")
    other = svcctl(netns, "diff", flavour, EXAMPLE, "--node-name", "node-2", "--cluster-cidr", "10.244.0.0/16")
    assert other.returncode == 1 and "-:SVCCTL-SEP-" in other.stdout and "+-A SVCCTL-SVC-" in other.stdout


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_rule_edited_by_hand_is_repaired_by_apply_and_reload_rewrites_every_chain(netns, flavour):
    """Unlike nftables apply, an iptables apply compares every rule (iptables-save lists them
    all at once): a rule added by hand inside svcctl's chain is taken out. --reload rewrites the
    chains even when nothing differs."""
    assert svcctl(netns, "apply", flavour, EXAMPLE, *NODE).returncode == 0
    chain = next(line.split()[0][1:] for line in saved(netns, flavour).splitlines() if line.startswith(":SVCCTL-SVC-"))
    tool = "iptables-nft" if flavour == "nft" else "iptables-legacy"
    assert run_in(netns, tool, "-t", "nat", "-I", chain, "-j", "RETURN").returncode == 0
    repaired = svcctl(netns, "apply", flavour, EXAMPLE, *NODE)
    assert repaired.stdout.startswith("applied: "), repaired.stdout
    assert svcctl(netns, "diff", flavour, EXAMPLE, *NODE).returncode == 0
    reloaded = svcctl(netns, "apply", flavour, "--reload", EXAMPLE, *NODE)
    written = sum(int(n) for n in re.findall(r"(\d+) chain\(s\) written", reloaded.stdout))
    assert written == saved(netns, flavour).count("\n:SVCCTL-") and written, reloaded.stdout  # every chain
    assert svcctl(netns, "diff", flavour, EXAMPLE, *NODE).returncode == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dry_run_changes_nothing(netns, flavour, tmp_path):
    before = saved(netns, flavour)
    dry = svcctl(netns, "apply", flavour, "--dry-run", EXAMPLE, *NODE)
    assert dry.returncode == 0, dry.stderr
    assert "+:SVCCTL-SERVICES" in dry.stdout
    assert dry.stderr == f"dry run: the kernel accepts the ruleset; apply would send: created svcctl's chains in ip and ip6 (iptables-{flavour})\n"
    assert saved(netns, flavour) == before
    assert svcctl(netns, "apply", flavour, EXAMPLE, *NODE).returncode == 0
    before = saved(netns, flavour)
    dry = svcctl(netns, "apply", flavour, "--dry-run", without_web(tmp_path), *NODE)
    assert dry.returncode == 0 and "# shop/web:http/tcp: removed" in dry.stdout, dry.stdout + dry.stderr
    assert saved(netns, flavour) == before


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_refused_table_is_undone_with_those_before_it_and_names_its_service(netns, flavour, tmp_path):
    assert svcctl(netns, "apply", flavour, EXAMPLE, *NODE).returncode == 0
    # Another tool jumps into one of svcctl's chains that the next apply deletes: iptables
    # refuses to delete a chain in use, so the nat table is refused after filter was committed.
    sep = next(line.split()[1] for line in saved(netns, flavour).splitlines() if line.startswith("-A SVCCTL-SEP-") and "shop/web" in line)
    for args in (["-N", "OTHER"], ["-A", "OTHER", "-j", sep]):
        assert run_in(netns, f"iptables-{flavour}", "-t", "nat", *args).returncode == 0
    before = saved(netns, flavour)
    refused = svcctl(netns, "apply", flavour, without_web(tmp_path), *NODE)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert refused.stderr.startswith("svcctl: iptables refused the rules, nothing was changed: ")
    assert refused.stderr.endswith(
        f"of the iptables nat input: -X {sep} (Service shop/web port http/tcp); "
        f"a rule svcctl did not write may still jump to {sep}: find it with iptables-save\n"
    ), refused.stderr
    assert saved(netns, flavour) == before  # filter, committed first, was put back


def test_applies_are_serialized_by_the_lock(netns):
    lock = open(f"{LOCK_DIR}/svcctl-iptables.lock", "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, SVCCTL, "apply", "--backend", "iptables", EXAMPLE, *NODE],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)
        assert proc.poll() is None, "apply ran while another held the lock"
        assert "SVCCTL-" not in saved(netns, "nft") + saved(netns, "legacy")
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("applied: created")


def test_the_xtables_lock_is_honoured(netns, tmp_path):
    """iptables-legacy-restore waits for the xtables lock (-w) and gives up after a while:
    another program holding it makes apply fail, changing nothing."""
    lockfile = tmp_path / "xtables.lock"
    with open(lockfile, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = svcctl(netns, "apply", "legacy", EXAMPLE, *NODE, env={"XTABLES_LOCKFILE": str(lockfile)})
    assert result.returncode == 3
    assert result.stderr == "svcctl: another program held the xtables lock for more than 5 s: nothing was changed, try again\n"
    assert "SVCCTL-" not in saved(netns, "legacy")
    assert svcctl(netns, "apply", "legacy", EXAMPLE, *NODE, env={"XTABLES_LOCKFILE": str(lockfile)}).returncode == 0


def test_auto_detects_the_flavour_as_kube_proxy_does(netns):
    # Nothing on the node: iptables-nft, as kube-proxy's image defaults to.
    assert svcctl(netns, "apply", None, EXAMPLE, *NODE).stdout.endswith("(iptables-nft)\n")
    assert svcctl(netns, "delete", None).returncode == 0
    # kubelet's hint chain in iptables-legacy's mangle table: the node uses iptables-legacy.
    assert run_in(netns, "iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT").returncode == 0
    assert svcctl(netns, "apply", None, EXAMPLE, *NODE).stdout.endswith("(iptables-legacy)\n")
    # Where svcctl's chains are wins over the hint: a re-apply stays in that flavour.
    assert svcctl(netns, "delete", None).returncode == 0
    assert svcctl(netns, "apply", "nft", EXAMPLE, *NODE).returncode == 0
    again = svcctl(netns, "apply", None, EXAMPLE, *NODE)
    assert again.stdout == "unchanged: the kernel already holds this ruleset\n"
    # svcctl's chains in both: an explicit mode writes them and warns; auto will not guess.
    second = svcctl(netns, "apply", "legacy", EXAMPLE, *NODE)
    assert second.returncode == 0 and second.stderr == (
        "svcctl: warning: svcctl's chains are also in iptables-nft: both flavours process every packet; "
        "remove those with `svcctl delete --backend iptables --iptables-mode nft`\n"
    ), second.stderr
    both = svcctl(netns, "apply", None, EXAMPLE, *NODE)
    assert both.returncode == 3
    assert both.stderr.startswith("svcctl: svcctl's chains are in both iptables-nft and iptables-legacy: choose one with --iptables-mode")


@pytest.mark.parametrize("args", [["apply", EXAMPLE], ["apply", "--dry-run", EXAMPLE], ["diff", EXAMPLE], ["delete"]])
@pytest.mark.parametrize("flavour", [None, *FLAVOURS])
def test_without_privileges_one_sentence_and_exit_3(netns, args, flavour):
    result = svcctl(netns, args[0], flavour, *args[1:], user="nobody")
    assert (result.returncode, result.stderr) == (3, "svcctl: svcctl needs CAP_NET_ADMIN to read and change iptables rules: run it as root\n")


@pytest.mark.parametrize("flavour, program", [(None, "iptables"), ("nft", "iptables-nft-save"), ("legacy", "iptables-legacy-save")])
def test_without_iptables_one_sentence_and_exit_3(netns, tmp_path, flavour, program):
    result = svcctl(netns, "apply", flavour, EXAMPLE, *NODE, env={"PATH": str(tmp_path)})
    assert result.returncode == 3
    assert result.stderr == f"svcctl: {program} is not installed: install iptables 1.8 or later (Debian: apt-get install iptables)\n"


def test_an_unknown_mode_is_refused_before_anything_runs(netns):
    result = svcctl(netns, "apply", "xtables", EXAMPLE)
    assert result.returncode == 2
    assert result.stderr == 'command line: iptables-mode: "xtables" is not an iptables mode (known: auto, nft, legacy)\n'


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_delete_removes_only_svcctls_chains_and_jumps(netns, flavour):
    iptables = f"iptables-{flavour}"
    for args in (["-t", "nat", "-N", "DOCKER"], ["-t", "nat", "-A", "PREROUTING", "-j", "DOCKER"], ["-A", "FORWARD", "-j", "ACCEPT"]):
        assert run_in(netns, iptables, *args).returncode == 0
    before = rules(netns, flavour)
    assert svcctl(netns, "apply", flavour, EXAMPLE, *NODE).returncode == 0
    gone = svcctl(netns, "delete", flavour)
    assert gone.returncode == 0
    assert gone.stdout.startswith(f"deleted: 26 chain(s) and 22 jump(s) of svcctl's in iptables-{flavour} (ip filter, ip nat, ip6 filter, ip6 nat)")
    assert rules(netns, flavour) == before
    again = svcctl(netns, "delete", flavour)
    assert (again.returncode, again.stdout) == (0, f"nothing to delete: no svcctl chains in iptables-{flavour}\n")
