"""The click group every command joins: global options, the store location, the error translation.

Library errors (``memory.HashmemError``) become one-line messages with exit
code 1; bad usage exits 2 (click's own). No traceback for a user mistake.
The commands live in ``*_cmds.py``; ``main.py`` gathers them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from hashmem.memory.backends import is_milvus_uri
from hashmem.memory.errors import HashmemError
from hashmem.memory.kernels import topk

STORE_ENV = "HASHMEM_STORE"


class StoreLocation(click.ParamType):
    """A store file path (a ``Path``), or a ``milvus://HOST:PORT/COLLECTION`` URI (kept a string)."""

    name = "PATH|URI"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or is_milvus_uri(value):
            return value
        return click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)


def default_store_path() -> Path | str:
    """``$HASHMEM_STORE`` (a path or a milvus:// URI), else ``memory.db`` in the user data directory."""
    env = os.environ.get(STORE_ENV)
    if env:
        return env if is_milvus_uri(env) else Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("hashmem", appauthor=False)) / "memory.db"


class HashmemGroup(click.Group):
    """Turns library errors into one-line ClickExceptions (exit 1)."""

    def invoke(self, ctx: click.Context):
        # pymilvus logs each failed call with a traceback on stderr; the one-line message says it all
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        try:
            return super().invoke(ctx)
        except HashmemError as e:
            raise click.ClickException(str(e).splitlines()[0] if str(e) else type(e).__name__) from e
        except KeyboardInterrupt:
            click.echo("interrupted; committed batches are kept", err=True)
            sys.exit(130)


@click.group(cls=HashmemGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hashmem", prog_name="hashmem")
@click.option(
    "--store",
    "store",
    type=StoreLocation(),
    default=None,
    help=f"Store file, or milvus://HOST:PORT/COLLECTION for a Milvus server. Default: ${STORE_ENV}, "
         "else memory.db in the user data directory.",
)
@click.option("--durable", is_flag=True, default=False,
              help="Sync every commit to disk (SQLite synchronous=FULL): a power loss keeps it too. "
                   "Default: a power loss may drop the last commits, never the store's consistency.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars (they are off anyway when stderr is not a terminal).")
@click.pass_context
def cli(ctx: click.Context, store: Path | None, durable: bool, quiet: bool = False) -> None:
    """hashmem: a retrieval memory that keeps passages as binary codes, int8
    vectors and a few bytes of lexical hints, and decompresses them on request.

    \b
    Quick start:
      hashmem init
      hashmem add notes/ book.txt
      hashmem search "what did the captain say" -k 5
    """
    ctx.ensure_object(dict)
    ctx.obj["store"] = store
    ctx.obj["durable"] = durable
    ctx.obj["quiet"] = quiet
    if not quiet and stderr_is_terminal():  # the first search on a machine compiles the kernels: not a hang
        topk.on_slow_compile = lambda: click.echo(
            "hashmem: compiling the search kernels for this machine (the first time only, about 20 s)", err=True)


def store_path(ctx: click.Context) -> Path | str:
    """The store path chosen for this invocation."""
    explicit = ctx.find_root().obj.get("store")
    return explicit if explicit is not None else default_store_path()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def show_progress(ctx: click.Context) -> bool:
    """Progress bars on stderr: unless ``--quiet``, and only when stderr is a terminal."""
    return not ctx.find_root().obj.get("quiet") and stderr_is_terminal()
