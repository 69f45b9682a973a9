"""A readers–writer lock for the threads of one process that share one open store.

Many readers at once, or one writer; a waiting writer keeps new readers out (no writer
starvation). It is reentrant the ways a store needs: the writing thread may take either
side again (a write calls helpers that read), and a reading thread may read again. A
thread that reads may not start writing: it would wait for itself, so that raises.

What it does not do: lock between processes (SQLite's file locks do that).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RWLock:
    """``with lock.read(): …`` / ``with lock.write(): …``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer: int | None = None  # the writing thread's ident
        self._waiting = 0
        self._local = threading.local()  # this thread's read depth

    @contextmanager
    def read(self) -> Iterator[None]:
        depth = getattr(self._local, "reads", 0)
        if depth or self._writer == threading.get_ident():  # already inside: no wait (a writer would wait for us)
            self._local.reads = depth + 1
            try:
                yield
            finally:
                self._local.reads = depth
            return
        with self._cond:
            while self._writer is not None or self._waiting:
                self._cond.wait()
            self._readers += 1
        self._local.reads = 1
        try:
            yield
        finally:
            self._local.reads = 0
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        if getattr(self._local, "reads", 0):
            raise RuntimeError("a thread that holds the read lock cannot take the write lock (it would wait for "
                               "itself)")
        with self._cond:
            self._waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()
