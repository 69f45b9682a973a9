"""The exact-text fidelity tiers: ``text`` (zstd with a trained dictionary) and ``llm`` (arithmetic coding under a model)."""
