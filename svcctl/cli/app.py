"""The Typer application and the entry point: every error a user can cause becomes a message and
an exit status, never a traceback.

Exit statuses: 0 ok; 1 ``diff`` found differences; 2 invalid input or usage; 3 the kernel
refused or is out of reach (missing privileges or support); 4 an internal error (a bug in svcctl).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional, TypeVar

import typer
import typer.core

from ..kernel import KernelError, Refused
from ..problems import InvalidInput
from .settings import REPORT

EXIT_OK, EXIT_DIFFERENT, EXIT_INVALID, EXIT_KERNEL, EXIT_BUG = 0, 1, 2, 3, 4
PROBLEMS_SHOWN = 50  # bad input is listed up to this many lines, unless --all-problems

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as Unix tools print it; also what completion scripts see
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

# typer prints an argument's Python type next to its name (MANIFEST <list[str]>) and braces a
# required one in the usage line ({MANIFEST}...): a Unix help names the value once, MANIFEST...
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
typer.core.TyperArgument._usage_display_name = lambda self: f"{self.display_name_raw}..." if self.nargs != 1 else self.display_name_raw  # type: ignore[method-assign]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ~50 ms: only for --version

    try:
        return version("svcctl")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"svcctl {_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    _: Annotated[Optional[bool], typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Turn Kubernetes Services into kernel packet rules (nftables), without a cluster.

    Reads Service, Endpoints, EndpointSlice and Pod manifests (files, directories, - for standard
    input; YAML or JSON as kubectl prints them), validates them as the API server would, works out
    each Service's endpoints, and prints, loads or diffs the rules. docs/cli.md has the reference.
    """


def main() -> None:
    """Entry point: runs the app and turns every error into a message and a status.
    Usage errors (unknown option, bad choice) are typer's to report: it prints them and exits 2."""
    REPORT.all_problems = False  # set by the options of this run (in-process runs: tests)
    try:
        app(prog_name="svcctl")
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


T = TypeVar("T")
_KEPT: list[object] = []


def kept(results: T) -> T:
    """A command's results, kept alive until svcctl exits: returning from the command would
    free them object by object (millions of objects, 0.12 s, at 10,000 Services), and ``entry``
    exits without that. An in-process caller of ``main`` keeps only the last command's."""
    _KEPT[:] = [results]
    return results


def entry() -> None:
    """The console script: ``main``, then an immediate exit once the output is flushed. A normal
    exit frees the heap object by object first, for nothing: 0.12 s after compiling 10,000
    Services, whose results ``kept`` holds. (Not ``main`` itself: tests run it in-process.)"""
    # No pydantic plugins: the packages installed beside svcctl must not see or change how a root
    # tool validates manifests. It also spares pydantic's scan of every installed package's entry
    # points when the first model is built (~4 ms). Read then, so set before; children inherit it.
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    try:
        main()
        status = EXIT_OK
    except SystemExit as done:
        status = _status(done.code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (| head), a stream closed
            pass
    os._exit(status)


def _status(code: object) -> int:
    """What ``sys.exit(code)`` would exit with (a message is printed, and is status 1)."""
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
