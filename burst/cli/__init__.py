"""The `burst` command: one module per noun, a BurstError is one line and exit 1."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from burst.cli import bursts, status
from burst.cli.common import err_console, error_line, esc
from burst.config import EXAMPLE
from burst.errors import BurstError, Interrupted

app = typer.Typer(name="burst", help="Hybrid-cloud burst capacity: borrow the pool, then the clouds; give it all "
                                     "back after the peak.", no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False)

bursts.register(app)
status.register(app)

# nouns with a Typer app of their own: burst lab ..., burst pool ..., burst calendar ...
for noun, module in (("demo", "burst.cli.demo"), ("doctor", "burst.cli.doctor"), ("lab", "burst.cli.lab"), ("pool", "burst.cli.pool"), ("calendar", "burst.cli.calendar"),
                     ("daemon", "burst.cli.daemon"), ("gc", "burst.cli.gc"),
                     ("simulate", "burst.cli.simulate")):
    try:
        sub = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        continue
    if hasattr(sub, "register"):
        sub.register(app)
    else:
        app.add_typer(sub.app, name=noun)


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the example config.")] = Path("burst.toml"),
         force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False) -> None:
    """Write a commented example config (on the fake provider) to start from."""
    if path.exists() and not force:
        raise BurstError(f"{path} exists; use --force to overwrite it")
    path.write_text(EXAMPLE)
    err_console.print(f"wrote {esc(path)}", highlight=False)


def run(argv: list[str] | None = None) -> int:
    """Run `burst ARGV...` and return its exit code. Every error an operator can make
    is one line on stderr: a BurstError exits 1, a usage error (Typer's) exits 2, and
    neither shows a traceback. The message is printed as plain text, never as markup."""
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="burst")  # returns typer.Exit's code
    except Interrupted as exc:
        err_console.print(error_line(str(exc)), highlight=False, soft_wrap=True)
        return 130
    except BurstError as exc:
        err_console.print(error_line(str(exc)), highlight=False, soft_wrap=True)
        return 1
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted: run the same command again to resume")
        return 130
    except SystemExit as exc:  # a command that exits on its own (e.g. burst pool's one-line errors)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        # Typer raises its own copy of click's usage errors: known by their shape
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err_console.print(error_line(f"{exc.format_message()}{where}"), highlight=False, soft_wrap=True)
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


def main() -> None:
    # logging once, for every command: a step's warning is one line on stderr (never a
    # traceback); `burst daemon` sets its own level and format over this
    logging.basicConfig(level=logging.WARNING, format="burst: %(message)s", stream=sys.stderr)
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
