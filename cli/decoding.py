"""Opening a decoder for a command: its one-line fallback notice, and the recall of search hits."""

from __future__ import annotations

import click


def make_decoder(mem, *, model=None, decoder="auto", **options):
    """The decoder for a command; prints the fallback notice (one line, stderr) when there is one."""
    from hashmem.decoders import open_decoder

    try:
        dec = open_decoder(mem, decoder, model=model, **options)
    except ImportError as e:
        raise click.ClickException(str(e).splitlines()[0]) from e
    if dec.notice:
        click.echo(f"notice: {dec.notice}", err=True)
    return dec


def quiet_fallback():
    """Silence the library's DecoderFallbackWarning: the CLI prints the notice itself."""
    import warnings

    from hashmem.decoders import DecoderFallbackWarning

    warnings.simplefilter("ignore", DecoderFallbackWarning)


def recall_hits(mem, hits, *, model=None) -> list:
    """Reconstructions of search hits (used by ``search --recall``; ``llm`` bodies decoded together)."""
    quiet_fallback()
    dec = make_decoder(mem, model=model)
    return [dec.reconstruct(r) for r in mem.recall_many([h.id for h in hits])]
