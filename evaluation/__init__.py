"""Measuring the rest: retrieval quality (``retrieval``), reconstruction fidelity (``recall``), question
answering (``ask``) and the synthetic scale benchmark (``bench``).

It imports ``hashmem.memory`` and ``hashmem.decoders``; neither imports it (like faiss's ``contrib``).
Only the CLI's ``eval``, ``eval-recall``, ``eval-ask`` and ``bench`` commands load it.
"""
