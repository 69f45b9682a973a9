"""Hamming top-k kernels over packed codes: a numpy path (``topk``) and numba-compiled loops (``compiled``)."""
