"""Commands that serve a store: serve (HTTP), mcp (stdio), keys add|list|revoke (the servers' tenants)."""

from __future__ import annotations

import json

import click

from .group import StoreLocation, cli
from .store_cmds import open_memory, positive

SERVER_EXTRA = "the servers need their extra: pip install 'hashmem[server]'"


def _store_option(f):
    """``--store PATH`` after the command too (``hashmem serve --store x.db``), same as the global one."""

    def remember(ctx, param, value):
        if value is not None:
            ctx.find_root().obj["store"] = value
        return value

    return click.option("--store", type=StoreLocation(), default=None,
                        expose_value=False, callback=remember, is_eager=True,
                        help="Store file (same as the global --store).")(f)


def _parse_grants(values: tuple[str, ...]) -> dict[str, str]:
    grants = {}
    for v in values:
        ns, sep, access = v.rpartition("=")
        if not sep:
            ns, access = v, "read"
        if not ns or access not in ("read", "write"):
            raise click.BadParameter(f"expected NAMESPACE or NAMESPACE=read|write, got {v!r}", param_hint="--ns")
        grants[ns] = access
    if not grants:
        raise click.BadParameter("give at least one namespace", param_hint="--ns")
    return grants


@cli.command()
@_store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs an API key in the store.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--max-body", type=int, default=8 * 1024 * 1024, show_default=True, callback=positive,
              help="Largest request body in bytes (larger: 413).")
@click.option("--decoder", type=click.Choice(["auto", "llama", "extractive"]), default="auto", show_default=True,
              help="Decoder for recall and ask.")
@click.option("--model", default=None, help="A GGUF model for the llama decoder.")
@click.pass_context
def serve(ctx, host, port, max_body, decoder, model):
    """Serve the store over HTTP (JSON API under /v1, OpenAPI docs at /docs)."""
    try:
        from hashmem.server.app import serve as run
        from hashmem.server.errors import ApiError
    except ImportError as e:
        raise click.ClickException(f"{SERVER_EXTRA} ({e})") from e
    with open_memory(ctx, create=True) as mem:
        if not any(k.active for k in mem.keys()):
            click.echo("notice: the store has no API key, so the server is open to every local user and "
                       "listens on loopback only (add keys with `hashmem keys add`)", err=True)
        try:
            run(mem, host=host, port=port, max_body_bytes=max_body, decoder=decoder, model=model)
        except ApiError as e:
            raise click.ClickException(e.message) from e


@cli.command()
@_store_option
@click.option("--namespace", "-n", default="default", show_default=True,
              help="The one namespace the agent may read and write.")
@click.option("--decoder", type=click.Choice(["auto", "llama", "extractive"]), default="auto", show_default=True)
@click.option("--model", default=None, help="A GGUF model for the llama decoder.")
@click.pass_context
def mcp(ctx, namespace, decoder, model):
    """Serve the store to an agent as an MCP server over stdio (tools: remember, search, recall, ask, forget)."""
    try:
        from hashmem.server.mcp import run
    except ImportError as e:
        raise click.ClickException(f"{SERVER_EXTRA} ({e})") from e
    if not namespace.strip():
        raise click.BadParameter("the namespace is empty", param_hint="--namespace")
    with open_memory(ctx, create=True) as mem:
        run(mem, namespace=namespace, decoder=decoder, model=model)


@cli.group()
def keys():
    """API keys of the servers: each grants namespaces (read, or read and write)."""


@keys.command("add")
@click.argument("name")
@click.option("--ns", "grants", multiple=True, metavar="NAMESPACE[=read|write]",
              help="A namespace the key may use (repeatable); read unless =write.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_add(ctx, name, grants, as_json):
    """Make key NAME; prints its token once (the store keeps only a hash)."""
    parsed = _parse_grants(grants)
    with open_memory(ctx, create=True) as mem:
        token = mem.add_key(name, parsed)
    if as_json:
        click.echo(json.dumps({"name": name, "token": token, "grants": parsed}))
        return
    click.echo(token)
    click.echo(f"-- key {name!r}: {', '.join(f'{n}={a}' for n, a in parsed.items())}; "
               "the token is shown only now", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keys_list(ctx, as_json):
    """List keys (names, grants, state; never tokens)."""
    with open_memory(ctx) as mem:
        rows = mem.keys()
    if as_json:
        click.echo(json.dumps([{"name": k.name, "grants": k.grants, "created": k.created, "revoked": k.revoked}
                               for k in rows]))
        return
    for k in rows:
        state = "valid" if k.active else "revoked"
        click.echo(f"{k.name:<24}{state:<9}{', '.join(f'{n}={a}' for n, a in k.grants.items())}")


@keys.command("revoke")
@click.argument("name")
@click.pass_context
def keys_revoke(ctx, name):
    """Revoke key NAME (at once, also for a running server)."""
    with open_memory(ctx, write=True) as mem:
        mem.revoke_key(name)
    click.echo(f"revoked {name}")
