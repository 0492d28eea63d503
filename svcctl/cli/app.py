"""The Typer application and the entry point: every error a user can cause becomes a message and
an exit status, never a traceback.

Exit statuses: 0 ok; 1 ``diff`` found differences; 2 invalid input or usage; 3 the kernel
refused or is out of reach (missing privileges or support); 4 an internal error (a bug in svcctl).
"""

from __future__ import annotations

import os
import sys

import typer

from ..kernel import KernelError, Refused
from ..problems import InvalidInput
from .settings import REPORT

EXIT_OK, EXIT_DIFFERENT, EXIT_INVALID, EXIT_KERNEL, EXIT_BUG = 0, 1, 2, 3, 4
PROBLEMS_SHOWN = 50  # bad input is listed up to this many lines, unless --all-problems

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Compile Kubernetes Services into nftables rules and load them, without a cluster.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def main() -> None:
    """Entry point: runs the app and turns every error into a message and a status.
    Usage errors (unknown option, bad choice) are typer's to report: it prints them and exits 2."""
    REPORT.all_problems = False  # set by the options of this run (in-process runs: tests)
    try:
        app()
    except InvalidInput as err:
        for line in err.lines(None if REPORT.all_problems else PROBLEMS_SHOWN):
            print(line, file=sys.stderr)
        sys.exit(EXIT_INVALID)
    except Refused as err:
        print(f"svcctl: {err.describe()}", file=sys.stderr)
        sys.exit(EXIT_KERNEL)
    except KernelError as err:
        print(f"svcctl: {err}", file=sys.stderr)
        sys.exit(EXIT_KERNEL)
    except Exception as err:  # noqa: BLE001 - the contract: no traceback for anything a user can cause
        if os.environ.get("SVCCTL_DEBUG"):
            raise
        print(f"svcctl: internal error (a bug in svcctl): {type(err).__name__}: {err} (set SVCCTL_DEBUG=1 for details)", file=sys.stderr)
        sys.exit(EXIT_BUG)
