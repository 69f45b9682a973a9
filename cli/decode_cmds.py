"""Commands that decode: recall, ask, summarize, eval-recall (and the formatting of search --recall)."""

from __future__ import annotations

import json

import click

from .decoding import make_decoder, quiet_fallback
from .group import cli, show_progress
from .render import reconstruction_dict, summary_dict
from .store_cmds import RECORD_ID, open_memory, positive

MODEL_HELP = "A GGUF model for the llama decoder (default $HASHMEM_GGUF, else SmolLM2-135M-Instruct)."


@cli.command()
@click.argument("record_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--model", default=None, help=MODEL_HELP)
@click.option("--decoder", type=click.Choice(["auto", "llama", "extractive"]), default="auto", show_default=True,
              help="auto: llama when llama-cpp-python is installed, else extractive.")
@click.option("--candidates", type=int, default=None, callback=positive, help="Drafts drawn and scored (llama).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (llama).")
@click.pass_context
def recall(ctx, record_id, as_json, model, decoder, candidates, seed):
    """Rebuild passage RECORD_ID from its hints, vector and code (exact in a text-tier store)."""
    quiet_fallback()
    options = {"seed": seed} if decoder != "extractive" else {}
    if candidates is not None and decoder != "extractive":
        options["candidates"] = candidates
    with open_memory(ctx) as mem:
        r = make_decoder(mem, model=model, decoder=decoder, **options).reconstruct(mem.get(record_id))
    if as_json:
        click.echo(json.dumps(reconstruction_dict(r), ensure_ascii=False))
        return
    click.echo(r.text)
    how = f"exact ({r.decoder} tier)" if r.exact else (
        f"fidelity {r.fidelity:.3f} (cosine to the stored vector), {r.decoder} decoder, "
        f"best of {r.candidates_tried}")
    click.echo(f"-- {how}, {r.ms:.0f} ms", err=True)


@cli.command()
@click.argument("question")
@click.option("-k", type=int, default=5, show_default=True, callback=positive, help="Memories recalled.")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--model", default=None, help=MODEL_HELP)
@click.option("--decoder", type=click.Choice(["auto", "llama", "extractive"]), default="auto", show_default=True)
@click.pass_context
def ask(ctx, question, k, namespace, as_json, model, decoder):
    """Answer QUESTION from the memories only, citing them as [id].

    Only a checked answer is printed: a draft that names what no memory holds, or
    that no memory supports, is replaced by "The memories do not hold the answer."
    before anything reaches the terminal (memories written as orders are never shown
    to the model).
    """
    quiet_fallback()
    if not question.strip():
        raise click.BadParameter("the question is empty", param_hint="QUESTION")
    with open_memory(ctx) as mem:
        hits = mem.search(question, k, namespace=namespace)
        dec = make_decoder(mem, model=model, decoder=decoder)
        answer = dec.ask(question, hits)
    if as_json:
        click.echo(json.dumps({"question": question, "answer": answer.text, "citations": answer.citations,
                               "found": answer.found, "unsupported": list(answer.unsupported),
                               "ms": round(answer.ms, 1), "decoder": answer.decoder,
                               "hits": [{"id": h.id, "score": round(h.score, 4)} for h in hits]},
                              ensure_ascii=False))
        return
    click.echo(answer.text)
    if answer.unsupported:
        click.echo(f"-- a draft named {', '.join(answer.unsupported)}, which no memory holds; withheld", err=True)
    cites = " ".join(f"[{i}]" for i in answer.citations) or "none"
    click.echo(f"-- sources: {cites}; {answer.decoder} decoder, {answer.ms:.0f} ms", err=True)


@cli.command()
@click.argument("query")
@click.option("-k", type=int, default=5, show_default=True, callback=positive, help="Memories recalled.")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--sentences", type=int, default=3, show_default=True, callback=positive, help="Sentences, at most.")
@click.option("--method", type=click.Choice(["extractive", "model"]), default=None,
              help="extractive: the memories' top sentences; model: written by the llama model, then checked "
                   "(default: the decoder's, extractive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--model", default=None, help=MODEL_HELP)
@click.option("--decoder", type=click.Choice(["auto", "llama", "extractive"]), default="auto", show_default=True)
@click.pass_context
def summarize(ctx, query, k, namespace, sentences, method, as_json, model, decoder):
    """Summarize what the memories hold about QUERY, every sentence citing its memories as [id].

    Built from the exact text on a text store, from the hints otherwise; a sentence the model
    writes is printed only when it names no number or name the memories lack (memories
    written as orders are never used).
    """
    quiet_fallback()
    if not query.strip():
        raise click.BadParameter("the query is empty", param_hint="QUERY")
    if method == "model" and decoder == "extractive":
        raise click.BadParameter("the extractive decoder has no model; use --decoder llama or auto",
                                 param_hint="--method")
    with open_memory(ctx) as mem:
        hits = mem.search(query, k, namespace=namespace)
        dec = make_decoder(mem, model=model, decoder=decoder)
        try:
            result = dec.summarize(query, hits, max_sentences=sentences, method=method)
        except ValueError as e:  # the extractive fallback asked for the model's summary
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps({"query": query, **summary_dict(result, hits)}, ensure_ascii=False))
        return
    click.echo(result.text)
    cites = " ".join(f"[{i}]" for i in result.citations) or "none"
    click.echo(f"-- sources: {cites}; {result.method} summary, {result.decoder} decoder, {result.ms:.0f} ms"
               + (f"; {result.dropped} unsupported sentence(s) withheld" if result.dropped else ""), err=True)


@cli.command("eval-recall")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--sample", type=int, default=100, show_default=True, callback=positive, help="Passages reconstructed.")
@click.option("--seed", type=int, default=0, show_default=True, help="Draws the passages; seeds the llama decoder.")
@click.option("--index", "index_size", type=int, default=1000, show_default=True, callback=positive,
              help="Passages stored in the temporary store (the sample is drawn from them).")
@click.option("--hint-bytes", type=int, default=None, help="Hint budget of the temporary store (default 48).")
@click.option("--decoders", "decoder_names", default="llama,extractive", show_default=True,
              help="Comma-separated decoders to measure.")
@click.option("--candidates", type=int, default=None, callback=positive, help="Drafts per reconstruction (llama).")
@click.option("--style", type=click.Choice(["infill", "free"]), default=None, help="llama draft style (default infill).")
@click.option("--expand-terms", type=int, default=None, help="Lexicon terms nearest to the vector added to the prompt.")
@click.option("--threads", type=int, default=None, callback=positive,
              help="llama.cpp threads (default: $HASHMEM_LLM_THREADS, else the idle cores, per passage).")
@click.option("--model", default=None, help=MODEL_HELP)
@click.option("--llm-sample", type=int, default=20, show_default=True,
              help="Passages coded with the llm tier (0: skip; a few seconds each).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def eval_recall(ctx, dataset_dir, sample, seed, index_size, hint_bytes, decoder_names, candidates, style,
                expand_terms, threads, model, llm_sample, as_json):
    """Measure reconstruction fidelity and text-tier size on DATASET_DIR.

    DATASET_DIR is a BEIR directory (corpus.jsonl) or a folder of .txt files;
    documents are chunked into ~60-word passages. The original text is used
    only for scoring.
    """
    from hashmem.evaluation.recall import evaluate

    quiet_fallback()
    names = [n.strip() for n in decoder_names.split(",") if n.strip()]
    bad = [n for n in names if n not in ("llama", "extractive")]
    if llm_sample < 0:
        raise click.BadParameter(f"must be 0 or more, got {llm_sample}", param_hint="--llm-sample")
    if bad or not names:
        raise click.BadParameter(f"unknown decoder(s) {', '.join(bad) or '(none)'}; use llama, extractive",
                                 param_hint="--decoders")
    options = {k: v for k, v in {"candidates": candidates, "style": style, "expand_terms": expand_terms,
                                        "threads": threads}.items()
               if v is not None}
    try:
        result = evaluate(dataset_dir, sample=sample, seed=seed, index=index_size, hint_bytes=hint_bytes,
                          decoders=names, model=model, decoder_options=options,
                          progress=show_progress(ctx), llm_sample=llm_sample)
    except ImportError as e:
        raise click.ClickException(str(e).splitlines()[0]) from e
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['dataset']}: {result['n']} passages, {result['hint_bytes_mean']:.1f} hint bytes each")
    click.echo(f"{'decoder':<11}{'cos mean':>9}{'cos med':>9}{'invented':>9}{'ms p50':>9}{'ms p90':>9}")
    for name, d in result["decoders"].items():
        click.echo(f"{name:<11}{d['cosine_mean']:>9.3f}{d['cosine_median']:>9.3f}{d['invented_rate']:>9.3f}"
                   f"{d['ms_p50']:>9.0f}{d['ms_p90']:>9.0f}")
    t = result["text_tier"]
    click.echo(f"text tier  {t['bytes_per_passage']:.1f} B/passage (gzip -9 {t['gzip9_bytes_per_passage']:.1f}, "
               f"zstd -19 {t['zstd19_bytes_per_passage']:.1f}, per passage)")
    if "llm_tier" in result:
        m = result["llm_tier"]
        click.echo(f"llm tier   {m['bytes_per_passage']:.1f} B/passage on {m['n']} passages = "
                   f"{m['ratio_to_gzip9']:.3f} x gzip -9 (gzip -9 {m['gzip9_bytes_per_passage']:.1f}, zstd -19 "
                   f"{m['zstd19_bytes_per_passage']:.1f}, zstd+dict {m['zstd_dict_bytes_per_passage']:.1f}); "
                   f"coded {m['coded_share']:.0%}, round trips {m['roundtrip_rate']:.0%}, decode ms p50 "
                   f"{m['decode_ms_p50']} p90 {m['decode_ms_p90']}")


@cli.command("eval-ask")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--fidelity", type=click.Choice(["hints", "text", "llm"]), default="hints", show_default=True,
              help="Tier of the temporary store (llm codes every turn: slow).")
@click.option("-k", type=int, default=5, show_default=True, callback=positive, help="Memories retrieved per question.")
@click.option("--limit", type=int, default=None, callback=positive,
              help="Questions asked, spread evenly over the file (default: all).")
@click.option("--decoder", type=click.Choice(["llama", "extractive"]), default="llama", show_default=True)
@click.option("--ask-style", type=click.Choice(["extract", "span", "cite"]), default=None,
              help="llama answer style (default extract: the best-scored span of the memories; span: words "
                   "of one memory under a grammar; cite: the earlier free answer with citations).")
@click.option("--model", default=None, help=MODEL_HELP)
@click.option("--threads", type=int, default=1, show_default=True, callback=positive,
              help="llama.cpp threads (1: spinning threads on shared cores run several times slower).")
@click.option("--details", type=click.Path(dir_okay=False), default=None, help="Write one JSON line per question here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def eval_ask(dataset_dir, fidelity, k, limit, decoder, ask_style, model, threads, details, as_json):
    """Answer DATASET_DIR's questions (LoCoMo layout) from a store of its turns and score them.

    Per question: retrieve k turns within its conversation, answer, score against the
    gold answer (token F1, exact match, not-found share, citation precision, ms), and,
    with no model, the share of questions whose gold answer the top k hold (exact text vs hints).
    """
    from hashmem.evaluation.ask import evaluate

    quiet_fallback()
    rows = [] if details else None
    options = {"threads": threads, **({"ask_style": ask_style} if ask_style else {})}
    try:
        result = evaluate(dataset_dir, fidelity=fidelity, k=k, limit=limit, decoder=decoder, model=model,
                          decoder_options=options, progress=not as_json, details=rows)
    except ImportError as e:
        raise click.ClickException(str(e).splitlines()[0]) from e
    if details:
        with open(details, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if as_json:
        click.echo(json.dumps(result))
        return
    a, u = result["answerable"], result["unanswerable"]
    c = result[f"containment@{k}"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    click.echo(f"{result['dataset']}: {result['n']} questions ({result['n_answerable']} answerable), "
               f"{result['fidelity']} store, {result['decoder']} decoder, k={k}")
    click.echo(f"answerable   F1 {fmt(a['f1'])}  exact {fmt(a['exact_match'])}  not found {fmt(a['not_found'])}  "
               f"citation precision {fmt(a['citation_precision'])}  invented {fmt(a['invented'])}")
    click.echo(f"unanswerable not found {fmt(u['not_found'])} of {u['n']}")
    click.echo(f"ms per answer p50 {result['ms_p50']:.0f}, p90 {result['ms_p90']:.0f}")
    click.echo(f"containment@{k} (no model): exact text {fmt(c['exact'])}, hints {fmt(c['hints'])}")
