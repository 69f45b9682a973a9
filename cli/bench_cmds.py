"""``hashmem bench``: the synthetic scale benchmark, and the bits/candidates trade-off plot."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .group import cli, store_path
from .store_cmds import positive


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


@cli.command("bench")
@click.option("--n", "n", type=int, default=1_000_000, show_default=True, callback=positive,
              help="Synthetic passages (codes) to index.")
@click.option("--bits", type=int, default=256, show_default=True, callback=positive, help="Code length.")
@click.option("--batch", type=int, default=1, show_default=True, callback=positive, help="Queries per call.")
@click.option("--k", "k", type=int, default=400, show_default=True, callback=positive,
              help="Hamming candidates per query (the store keeps 4 x candidates = 400).")
@click.option("--nprobe", type=int, default=None, callback=positive, help="IVF lists probed (default 256, or all when fewer).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG of recall@10 against bits and candidates, on real vectors.")
@click.option("--data", "data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Real passages for the end-to-end recall and --plot: a BEIR-layout directory "
                   "(corpus.jsonl, queries.jsonl) to embed. Default: the vectors of the store (--store), "
                   "200 of them held out as queries.")
@click.pass_context
def bench(ctx, n, bits, batch, k, nprobe, as_json, plot, data):
    """Synthetic scale benchmark: brute-force and IVF Hamming search over N codes.

    Codes are drawn from a Gaussian mixture with an embedding-like spectrum;
    the IVF lists are fitted on the drawn vectors, as a store fits them.
    Reports ms per query, queries/s, the IVF's recall of the exact top-k,
    resident bytes per passage, and our time over faiss IndexBinaryFlat's when
    faiss is installed. With real passages (--data, or a store of 1,000 or more),
    also the store's own search end to end: those passages among N - len(real)
    synthetic ones fitted to them, the store's int8 vectors, ITQ codes and (from
    200,000 passages) IVF lists with its default probe; recall@10 against float32.
    """
    if bits % 8 or bits > 384:
        raise click.BadParameter(f"bits must be a multiple of 8 up to 384, got {bits}", param_hint="--bits")
    if n < 4 * k:
        raise click.BadParameter(f"--n must be at least 4 x k = {4 * k}, got {n}", param_hint="--n")
    from hashmem.evaluation import bench as bench_mod

    vectors = _plot_vectors(ctx, data, required=plot is not None)  # fail early on a bad --plot
    result = bench_mod.run(n, bits, batch=batch, k=k, nprobe=nprobe)
    result["end_to_end"] = None
    if vectors is not None:
        corpus, queries, source = vectors
        result["end_to_end"] = {"source": source, **bench_mod.end_to_end(corpus, queries, n, bits, nprobe=nprobe)}
    if plot is not None:
        corpus, queries, source = vectors
        rows = bench_mod.tradeoff(corpus, queries)
        bench_mod.plot_tradeoff(rows, plot, title=f"hashmem: recall@10 vs code length and candidates ({source})")
        result["plot"] = {"path": str(plot), "source": source, "rows": rows}
    if as_json:
        click.echo(json.dumps(result))
        return
    b, s = result["brute"], result["sublinear"]
    click.echo(f"{result['n']:,} codes x {result['bits']} bits, top-{result['k']}, batch {result['batch']} "
               f"({result['backend']} kernel)")
    click.echo(f"  brute force  {b['ms_per_query']:8.3f} ms/query  {b['qps']:9.1f} q/s")
    click.echo(f"  IVF          {s['ms_per_query']:8.3f} ms/query  {s['qps']:9.1f} q/s  recall {s['recall']:.3f} "
               f"(nprobe {s['nprobe']}/{s['nlist']})")
    click.echo(f"  speed-up     {result['speedup']:.1f}x")
    click.echo(f"  ours / faiss {_fmt(result['faiss_ratio'])}")
    click.echo(f"  RSS          {result['rss_bytes_per_passage']:.1f} bytes/passage")
    e = result["end_to_end"]
    if e is None:
        click.echo("  end to end   - (give --data DIR, or --store with 1,000 passages or more)")
    else:
        how = f"IVF {e['nprobe']}/{e['nlist']} lists" if e["store_uses_ivf"] else "full scan"
        click.echo(f"  end to end   recall@10 {e['recall_at_10_store']:.4f} ({how}) vs {e['recall_at_10_brute']:.4f} "
                   f"over the exact Hamming top-{4 * e['candidates']} (loss {e['loss']:.4f}); it finds "
                   f"{e['hamming_recall']:.3f} of that top-{4 * e['candidates']}, {e['speedup']:.1f}x the scan's speed")
        click.echo(f"               {e['real_passages']:,} real passages among {e['n']:,}, {e['queries']} queries "
                   f"({e['source']})")
    if plot is not None:
        click.echo(f"  plot         {plot}")


def _plot_vectors(ctx, data: Path | None, *, required: bool = True):
    """(corpus float32, queries float32, description) of real passages; None when there are none and not required."""
    import numpy as np

    if data is not None:
        from hashmem.memory.embedding.embedder import Embedder

        corpus_file, queries_file = data / "corpus.jsonl", data / "queries.jsonl"
        if not corpus_file.exists():
            raise click.BadParameter(f"{data} has no corpus.jsonl (BEIR layout expected)", param_hint="--data")
        docs = [json.loads(line) for line in corpus_file.open()]
        texts = [(d.get("title", "") + ". " + d["text"]).strip(". ") for d in docs]
        qtexts = [json.loads(line)["text"] for line in queries_file.open()] if queries_file.exists() else []
        emb = Embedder()
        corpus = emb.encode(texts, progress=True)
        queries = emb.encode(qtexts[:500], progress=False) if qtexts else corpus[:200]
        return corpus, queries, f"{data.name}, {len(texts):,} passages, float32 truth"
    from hashmem.memory import Memory

    path = store_path(ctx)
    if not required and not isinstance(path, str) and not (path.exists() and path.stat().st_size > 0):
        return None
    with Memory(path, create=False) as mem:
        vecs = _store_vectors(mem)
    if len(vecs) < 1000 and not required:
        return None
    if len(vecs) < 1000:
        raise click.ClickException(f"the store holds {len(vecs)} passages; --plot needs at least 1,000, "
                                   "or give --data DIR")
    rng = np.random.default_rng(0)
    held = rng.choice(len(vecs), size=200, replace=False)
    keep = np.setdiff1d(np.arange(len(vecs)), held)
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs[keep], vecs[held], f"this store, {len(keep):,} passages, int8 truth"


def _store_vectors(mem):
    import numpy as np

    parts = [mem.quantizer.decode(v) for _, v in mem.backend.scan("qvec")]
    return np.concatenate(parts) if parts else np.zeros((0, mem.config.dim), np.float32)
