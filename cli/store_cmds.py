"""Commands on a store: init, add, search, show, stats, delete, compact."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from hashmem.memory.config import MAX_K

from .group import STORE_ENV, cli, default_store_path, is_milvus_uri, show_progress, store_path
from .render import format_reconstruction, hit_dict, reconstruction_dict

K_RANGE = click.IntRange(1, MAX_K)
RECORD_ID = click.IntRange(1, 2**63 - 1)  # SQLite's integer range: a larger id is a usage error
META_HELP = ("Values are JSON when they parse as JSON (1, 2.5, true, false, null, \"quoted\") and strings "
             "otherwise, so key=1 is the number 1 and key='\"1\"' the string \"1\".")



def open_memory(ctx: click.Context, *, create: bool = False, write: bool = False, **settings):
    """Open the store of this invocation (the library does the checking).

    Commands that only read open it read-only (``write`` and ``create`` False): the
    file is left exactly as it was, and a store on a read-only filesystem can be read.
    Only the built-in default location has its directory created; ``--store`` and
    ``$HASHMEM_STORE`` must point into an existing directory.
    """
    from hashmem.memory import Memory

    path = store_path(ctx)
    default = ctx.find_root().obj.get("store") is None and not os.environ.get(STORE_ENV)
    if create and default and not is_milvus_uri(path) and path == default_store_path():
        path.parent.mkdir(parents=True, exist_ok=True)
    durable = bool(ctx.find_root().obj.get("durable"))
    return Memory(path, create=create, readonly=not (create or write), durable=durable, **settings)


class NonFiniteNumber(ValueError):
    """A --meta value with NaN, Infinity or a number beyond a float (1e999): JSON has no such numbers."""


def parse_json_value(text: str, *, finite: bool = False):
    """A --meta / --where value: JSON when it is valid (finite) JSON, else the string itself.

    Raises:
        NonFiniteNumber: with ``finite``, for a value that is JSON but for NaN, Infinity or a
            number too large for a float (1e999), anywhere in it; without, that value is a string.
    """
    def reject(name):
        raise NonFiniteNumber(name)

    try:
        value = json.loads(text, parse_constant=reject)
    except NonFiniteNumber:
        if finite:
            raise
        return text
    except (ValueError, RecursionError):
        return text
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:  # 1e999 parses as inf
        if finite:
            raise NonFiniteNumber(text) from None
        return text
    except RecursionError:  # as deep as json.loads could go: check_metadata says so
        pass
    return value


def parse_meta(values: tuple[str, ...], param_hint: str = "--meta", *, finite: bool = True) -> dict:
    """KEY=VALUE pairs → dict, values typed as JSON (``parse_json_value``).

    Raises:
        click.BadParameter: not KEY=VALUE, or (with ``finite``: metadata to store) a non-finite number.
    """
    meta = {}
    for v in values:
        if "=" not in v or not v.split("=", 1)[0]:
            raise click.BadParameter(f"expected key=value, got {v!r}", param_hint=param_hint)
        key, value = v.split("=", 1)
        try:
            meta[key] = parse_json_value(value, finite=finite)
        except NonFiniteNumber:
            raise click.BadParameter(
                f"{key}={value}: metadata numbers must be finite (NaN, Infinity and numbers beyond "
                f"±1.8e308 are not JSON); quote it for a string: {key}='\"{value}\"'",
                param_hint=param_hint) from None
    return meta


def positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a positive integer, got {value}")
    return value


@cli.command()
@click.option("--model", default=None, help="Sentence-transformers model name or path (default all-MiniLM-L6-v2, shipped offline).")
@click.option("--bits", type=int, default=None, help="Code length in bits: a multiple of 8, 32 … model dimension (default 256).")
@click.option("--method", type=click.Choice(["itq", "sign", "lsh"]), default=None, help="Hashing method (default itq).")
@click.option("--hint-bytes", type=int, default=None, help="Byte budget of the lexical hints per passage (default 48).")
@click.option("--fidelity", type=click.Choice(["hints", "text", "llm"]), default=None, help="hints: codes and hints only (default); text: also keep each passage losslessly (zstd); llm: losslessly, arithmetic-coded under the decoder model (smaller, slower).")
@click.pass_context
def init(ctx, model, bits, method, hint_bytes, fidelity):
    """Create a new store (settings are fixed from then on)."""
    path = store_path(ctx)
    if is_milvus_uri(path):
        if _remote_store_exists(path):
            raise click.ClickException(f"{_redacted(path)} already holds a store; drop it or choose another collection")
    elif path.exists() and path.stat().st_size > 0 and _is_store(path):
        raise click.ClickException(f"{path} already exists; remove it or choose another --store")
    with open_memory(ctx, create=True, model=model, bits=bits, method=method,
                     hint_bytes=hint_bytes, fidelity=fidelity) as mem:
        c = mem.config
        click.echo(f"created {mem.path} (model {c.model}, {c.bits}-bit {c.method} codes, "
                   f"{c.hint_bytes}-byte hints, fidelity {c.fidelity})")


def _remote_store_exists(uri: str) -> bool:
    from hashmem.memory.backends import open_backend

    backend = open_backend(uri, create=True, readonly=True)
    try:
        return not backend.is_new
    finally:
        backend.close()


def _redacted(uri: str) -> str:
    from hashmem.memory.backends.milvus.uri import redact

    return redact(uri)


def _is_store(path) -> bool:
    """True when the file holds a store (a creation killed before its commit leaves none: init may redo it)."""
    from hashmem.memory.backends.local.storage import Storage

    try:
        s = Storage(path, create=False, readonly=True)
    except Exception:  # noqa: BLE001 - not openable: let the library report it when creating
        return True
    try:
        return not s.is_new
    finally:
        s.close()


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--namespace", "-n", default="default", show_default=True, help="Partition to add to.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE",
              help="Metadata for every passage (repeatable). " + META_HELP)
@click.option("--passage-tokens", type=int, default=128, show_default=True, callback=positive,
              help="Target passage length when chunking text files.")
@click.option("--dedup", type=click.Choice(["keep", "skip", "replace"]), default="keep", show_default=True,
              help="keep: store every passage; skip: not one that repeats a passage of the namespace "
                   "(or an earlier one of this add) by int8 cosine ≥ 0.89 or the same text up to case and spaces; "
                   "replace: such a repeat rewrites the passage it repeats (newer text and metadata, same id).")
@click.pass_context
def add(ctx, paths, namespace, meta, passage_tokens, dedup):
    """Add text/markdown files, directories (recursively), .jsonl files, or - for stdin.

    A .jsonl line needs a "text" field; its other fields become metadata.
    Every file is checked before anything is stored. With --dedup skip, a passage
    repeating one already kept is not stored again; with --dedup replace it rewrites that
    passage in place (its id stays); the summary says how many. Embedding takes the time (about
    70 passages/s on 2 quiet cores): progress is a bar on a terminal, else a line every 10 s.
    """
    from hashmem.memory import sources
    from hashmem.memory.validate import check_metadata

    extra = parse_meta(meta)
    check_metadata(extra, "--meta")
    spool = None
    try:
        files = []
        for p in paths:
            if p == "-":
                spool = tempfile.NamedTemporaryFile(prefix="hashmem-stdin-", suffix=".txt", delete=False)
                spool.write(sys.stdin.buffer.read())
                spool.close()
                files.append(Path(spool.name))
            else:
                files += sources.find_files([p])
        if not files:
            raise click.ClickException("no text, markdown or .jsonl files found in the given paths")
        names = {Path(spool.name): "-"} if spool else None
        sources.check_all(files, names=names)
        show = show_progress(ctx)  # a bar on a terminal; else, unless --quiet, a line every 10 s
        lines = not show and not ctx.find_root().obj.get("quiet")
        # a cheap first pass (chunking, no embedding: ~1 s per 10 MB) gives the total, rate and ETA
        total = sources.count_passages(files, passage_tokens=passage_tokens) if show or lines else None
        rows = sources.passages(files, metadata=extra, passage_tokens=passage_tokens, names=names)
        if lines:
            from .progress import reported

            rows = reported(rows, total, lambda text: click.echo(text, err=True))
        with open_memory(ctx, create=True) as mem:
            matches: list = []
            ids = mem.add_passages(rows, namespace=namespace, total=total, progress=show, dedup=dedup,
                                   matches=matches)
        click.echo(f"added {len(ids) - len(matches)} passages from {len(files)} file(s) to namespace {namespace!r}"
                   + (f"; {'replaced' if dedup == 'replace' else 'skipped'} {len(matches)} "
                      f"{'passages already kept with newer repeats' if dedup == 'replace' else 'repeating passages already kept'} (matched id"
                      f"{'s' if len(matches) > 1 else ''} {', '.join(str(m.id) for m in matches[:5])}"
                      f"{', …' if len(matches) > 5 else ''})" if matches else ""), err=True)
    finally:
        if spool is not None:
            Path(spool.name).unlink(missing_ok=True)


@cli.command()
@click.argument("query")
@click.option("-k", type=K_RANGE, default=10, show_default=True, help=f"Number of hits (at most {MAX_K:,}).")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--candidates", type=K_RANGE, default=None, help="Passages reranked with int8 vectors (default 100).")
@click.option("--where", multiple=True, metavar="KEY=VALUE",
              help="Metadata equality filter (repeatable); types must match exactly (1 is not true, nor \"1\"). "
                   + META_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--recall", "recall", is_flag=True, help="Also reconstruct each hit (see `hashmem recall`).")
@click.option("--mode", type=click.Choice(["hybrid", "binary+int8", "binary", "int8"]), default="hybrid",
              show_default=True, help="hybrid: the int8 stage blended with BM25 of the candidates' hint terms "
                                      "(their exact words on a text store); binary+int8: vectors only; "
                                      "int8: exhaustive, slow.")
@click.option("--lexical-weight", type=click.FloatRange(0.0, 1.0), default=None,
              help="BM25's share in hybrid's blend (default 0.15 on a hints or llm store, 0.4 on a text store).")
@click.option("--recency-weight", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Prefer newer passages when scores tie closely: each candidate's score + this × its newness "
                   "(0 oldest … 1 newest batch among the candidates).")
@click.pass_context
def search(ctx, query, k, namespace, candidates, where, as_json, recall=False, mode="hybrid",
           lexical_weight=None, recency_weight=0.0):
    """Search the store for passages near QUERY."""
    where = parse_meta(where, "--where", finite=False) or None  # a string "NaN" may be stored
    with open_memory(ctx) as mem:
        hits = mem.search(query, k, namespace=namespace, candidates=candidates, where=where, mode=mode,
                          lexical_weight=lexical_weight, recency_weight=recency_weight)
        recalled = None
        if recall:
            from .decoding import recall_hits

            recalled = recall_hits(mem, hits)
    if as_json:
        rows = [hit_dict(h) for h in hits]
        if recalled is not None:
            for row, r in zip(rows, recalled, strict=True):
                row["recall"] = reconstruction_dict(r)
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not hits:
        click.echo("no hits")
        return
    for h in hits:
        src = h.metadata.get("source", "")
        click.echo(f"{h.id:>8}  {h.score:.3f}  ham {h.hamming:>3}  {src}")
        click.echo(f"          {' '.join(h.hints)}")
        if recalled is not None:
            click.echo(f"          {format_reconstruction(recalled[hits.index(h)])}")


@cli.command()
@click.argument("record_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx, record_id, as_json):
    """Show what the store keeps of one record."""
    with open_memory(ctx) as mem:
        r = mem.get(record_id)
    d = {"id": r.id, "namespace": r.namespace, "created": r.created, "metadata": r.metadata,
         "hints": r.hints, "code": r.code.tobytes().hex(), "qvec_bytes": int(r.qvec.nbytes)}
    if r.text is not None:
        d["text"] = r.text
    if as_json:
        click.echo(json.dumps(d, ensure_ascii=False))
        return
    for key, value in d.items():
        click.echo(f"{key:>10}: {value}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stats(ctx, as_json):
    """Counts, settings and bytes per passage by part."""
    import dataclasses

    with open_memory(ctx) as mem:
        s = mem.stats()
    d = dataclasses.asdict(s)
    d["path"] = str(mem.path)
    if as_json:
        click.echo(json.dumps(d))
        return
    click.echo(f"store      {d['path']}")
    click.echo(f"records    {s.records}")
    for ns, n in s.namespaces.items():
        click.echo(f"  {ns}: {n}")
    c = s.config
    click.echo(f"model      {c['model']} (dim {c['dim']})")
    click.echo(f"codes      {c['bits']}-bit {c['method']} (generation {s.hasher['generation']}, "
               f"fitted on {s.hasher['fitted_on']})")
    click.echo(f"fidelity   {c['fidelity']}, hint budget {c['hint_bytes']} B")
    if len(s.fidelities) > 1:
        click.echo("kept as     " + ", ".join(f"{k} {v:,}" for k, v in s.fidelities.items()))
    for ns, v in s.ivf.items():
        click.echo(f"ivf        {ns}: {v['nlist']} lists fitted on the {v['lists_from']} of "
                   f"{v['fitted_on']} passages")
    click.echo("bytes/passage")
    for part, v in s.bytes_per_passage.items():
        click.echo(f"  {part:<9}{v:10.1f}")
    if s.file_parts:
        n = max(s.records, 1)
        click.echo(f"file by part (bytes, per passage, share of {s.file_bytes:,} B)")
        for part, v in s.file_parts.items():
            click.echo(f"  {part:<16}{v:12,}{v / n:10.1f}{100 * v / max(s.file_bytes, 1):7.1f} %")


@cli.command()
@click.argument("ids", nargs=-1, type=RECORD_ID, required=True)
@click.pass_context
def delete(ctx, ids):
    """Delete records by id (exit 1 when some did not exist)."""
    ids = tuple(dict.fromkeys(ids))  # `delete 5 5` deletes record 5, once
    with open_memory(ctx, write=True) as mem:
        n = mem.delete(ids)
    click.echo(f"deleted {n} of {len(ids)} record(s)")
    if n < len(ids):
        ctx.exit(1)


@cli.command()
@click.option("--max-bytes", type=click.IntRange(1), default=None,
              help="The budget: the store file's size in bytes (default: the budget saved with --save).")
@click.option("--namespace", "-n", default=None, help="Demote only this namespace's texts (default: any).")
@click.option("--save", is_flag=True, help="Also keep this budget in the store: every later add applies it.")
@click.option("--clear", is_flag=True, help="Remove the saved budget (and compact nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def compact(ctx, max_bytes, namespace, save, clear, as_json):
    """Demote exact texts to hints-only, least recently used first, until the store fits --max-bytes.

    Demoted passages stay searchable with the same code and vector (the same hits and
    scores); `recall` rebuilds them from their hints (exact: false). The freed space goes
    back to the filesystem (the first time, by one VACUUM of the whole file).
    """
    if clear and (save or max_bytes is not None):
        raise click.BadParameter("--clear takes no --max-bytes or --save", param_hint="--clear")
    if save and max_bytes is None:
        raise click.BadParameter("--save needs --max-bytes", param_hint="--save")
    with open_memory(ctx, write=True) as mem:
        if clear:
            mem.set_byte_budget(None)
            click.echo(f"removed the byte budget of {mem.path}")
            return
        if save:
            mem.set_byte_budget(max_bytes, namespace=namespace)
        done = mem.compact(max_bytes, namespace=namespace)
    if as_json:
        import dataclasses

        click.echo(json.dumps(dataclasses.asdict(done)))
        return
    click.echo(f"demoted {done.demoted:,} passage(s) to hints; {done.exact:,} keep their exact text; "
               f"{done.bytes_before:,} → {done.bytes_after:,} bytes (budget {done.max_bytes:,}: "
               f"{'met' if done.met else 'NOT met: every text is demoted'}) in {done.seconds:.1f} s")
    if not done.met:
        ctx.exit(1)
