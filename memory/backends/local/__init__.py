"""The local backend: one SQLite file (``storage``, ``sqlconn``) and the in-RAM Hamming index (``index``, ``ivf``, ``partition``)."""
