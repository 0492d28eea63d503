"""The one place that runs iptables programs: ``<family>-<mode>-save`` and ``-restore``, for
iptables-nft (``nft``: rules in nf_tables) or iptables-legacy (``legacy``: the x_tables kernel
interface). The two keep separate rule sets that both see every packet, so svcctl writes all of
its rules with one of them: the one the node uses (``Saves.choose``), or the one --iptables-mode
names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ..kernel import KernelError, Started
from ..options import IptablesMode as Mode
from .frame import PREFIX
from .objects import Family

LOCK_WAIT = 5  # seconds iptables-restore waits for the xtables lock (-w), as kube-proxy passes
# kubelet (1.17+, 1.24+) creates these in the mangle table with the iptables it uses itself.
_KUBELET_HINT = re.compile(r"^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) ", re.MULTILINE)
NOT_INSTALLED = "iptables is not installed: install iptables 1.8 or later (Debian: apt-get install iptables)"
NEEDS_ROOT = "svcctl needs CAP_NET_ADMIN to read and change iptables rules: run it as root"


class RestoreFailed(Exception):
    """iptables-restore refused its input: its exit status and message (KernelError for what is
    about the machine instead: privileges, the lock, missing programs)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[int, str]]:  # crosses the throwaway-namespace pipe
        return (type(self), (self.status, str(self)))


def _machine_problem(error: str, program: str) -> str | None:
    """One sentence for the failures that are about the machine, not the rules."""
    if "Permission denied" in error:
        return NEEDS_ROOT
    if "holding the xtables lock" in error:
        return f"another program held the xtables lock for more than {LOCK_WAIT} s: nothing was changed, try again"
    if "Protocol not supported" in error or "Address family not supported" in error or "do you need to insmod" in error:
        kind = "nf_tables" if "-nft-" in program else "iptables (x_tables)"
        return f"this kernel lacks {kind} support for {program.split('-')[0]} (load its modules)"
    return None


def _saved(program: str, started: Started) -> str:
    status, text, error = started.wait()
    if status != 0:
        raise KernelError(_machine_problem(error, program) or f"{program} failed: {error.strip() or f'exit status {status}'}")
    return text


@dataclass(frozen=True)
class Xtables:
    mode: Mode  # nft or legacy

    @property
    def flavour(self) -> str:
        return f"iptables-{self.mode.value}"

    @property
    def chunk(self) -> int | None:
        """How many new chains one iptables-restore input creates at most (svcctl.iptables.decide.
        staged): iptables-nft takes time quadratic in the chains of one input; iptables-legacy
        rewrites the whole table for each input, so one input is cheapest."""
        return 2000 if self.mode is Mode.NFT else None

    def program(self, family: Family, action: str) -> str:
        """``iptables-nft-restore``, ``ip6tables-legacy-save``, ...; KernelError if missing."""
        name = f"{family.value}-{self.mode.value}-{action}"
        if shutil.which(name) is None:
            raise KernelError(f"{name} is not installed: install iptables 1.8 or later (Debian: apt-get install iptables)")
        return name

    def save(self, family: Family, counters: bool = False) -> str:
        """Every table of the family as iptables-save prints it (no -t: for iptables-legacy,
        naming a table would make the kernel create it); ``counters``: each rule with its
        packet and byte counts in front (``[7:420] -A ...``). Raises KernelError."""
        program = self.program(family, "save")
        return _saved(program, Started([program, *(["-c"] if counters else [])]))

    def restore(self, family: Family, text: str, test: bool = False) -> None:
        """Load ``text`` with --noflush: each table in it is committed whole or not at all (the
        tables one after the other). With ``test`` nothing is committed: iptables-legacy checks
        the input against a copy of the kernel's tables, iptables-nft only parses it (it
        accepts a jump to a missing chain, for one). Raises RestoreFailed, or KernelError."""
        program = self.program(family, "restore")
        argv = [program, "--noflush", "-w", str(LOCK_WAIT), *(["--test"] if test else [])]
        done = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            problem = _machine_problem(done.stderr, program)
            if problem:
                raise KernelError(problem)
            raise RestoreFailed(done.returncode, done.stderr)


def installed(mode: Mode) -> bool:
    return all(shutil.which(f"{f.value}-{mode.value}-{a}") for f in Family for a in ("save", "restore"))


def _holds_chains(saved: dict[Family, str]) -> bool:
    """Whether one flavour's iptables-save output holds svcctl's chains."""
    return any(f"\n:{PREFIX}" in text for text in saved.values())


class Saves:
    """iptables-save of both families, for the flavour asked for or, with ``auto``, for each one
    installed; the programs run while svcctl does other work (diff compiles the plan meanwhile)."""

    def __init__(self, requested: Mode, other: bool = False) -> None:
        """``other``: with a mode asked for, also read the other flavour, if installed, to tell
        whether it holds svcctl's chains too (``also_in``: both would process every packet)."""
        self.requested = requested
        modes = [m for m in (Mode.NFT, Mode.LEGACY) if m is requested or ((other or requested is Mode.AUTO) and installed(m))]
        if not modes:
            raise KernelError(NOT_INSTALLED)
        self.also_in: Mode | None = None  # the other flavour, when svcctl's chains are there too
        self._started = {}
        for mode in modes:
            for family in Family:
                program = Xtables(mode).program(family, "save")
                self._started[(mode, family)] = (program, Started([program]))

    def choose(self) -> tuple[Xtables, dict[Family, str]]:
        """The flavour to use, and what its iptables-save printed per family. Raises KernelError.

        ``auto``: where svcctl's chains are, so that a re-apply never writes a second set in the
        other flavour; otherwise as kube-proxy's image decides (kubernetes-sigs/iptables-wrappers):
        nft if kubelet's hint chains are in iptables-nft's tables, legacy if they are in
        iptables-legacy's, else nft. svcctl's chains in both: KernelError."""
        saved: dict[Mode, dict[Family, str]] = {}
        failed: dict[Mode, KernelError] = {}
        for (mode, family), (program, started) in self._started.items():
            try:
                saved.setdefault(mode, {})[family] = _saved(program, started)
            except KernelError as err:
                failed.setdefault(mode, err)
        if self.requested is not Mode.AUTO or str(next(iter(failed.values()), "")) == NEEDS_ROOT:
            if self.requested in failed or (self.requested is Mode.AUTO and failed):
                raise failed.get(self.requested) or next(iter(failed.values()))
            for mode, texts in saved.items():
                if mode is not self.requested and _holds_chains(texts):
                    self.also_in = mode
            return Xtables(self.requested), saved[self.requested]
        # auto: a flavour this kernel cannot read (no x_tables, say) is not the node's.
        saved = {m: texts for m, texts in saved.items() if m not in failed}
        if not saved:
            raise next(iter(failed.values()))
        with_chains = [m for m, texts in saved.items() if _holds_chains(texts)]
        if len(with_chains) > 1:
            raise KernelError(
                "svcctl's chains are in both iptables-nft and iptables-legacy: choose one with --iptables-mode "
                "and remove the other's with `svcctl delete --backend iptables --iptables-mode <the other>`"
            )
        hinted = [m for m, texts in saved.items() if any(_KUBELET_HINT.search(text) for text in texts.values())]
        chosen: Mode = (with_chains or hinted or list(saved))[0]
        return Xtables(chosen), saved[chosen]
