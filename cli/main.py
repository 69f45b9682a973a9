"""Entry point of the ``hashmem`` command: the group (``group.py``) with every command registered."""

from __future__ import annotations

from . import store_cmds  # noqa: F401  (registers commands on import)
from .group import cli

__all__ = ["cli", "main"]


def _register_optional() -> None:
    for optional in ("eval_cmds", "decode_cmds", "bench_cmds", "server_cmds"):
        try:
            __import__(f"hashmem.cli.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"hashmem.cli.{optional}":
                raise


_register_optional()


def main() -> None:
    cli(prog_name="hashmem")
