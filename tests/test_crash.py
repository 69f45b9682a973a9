"""A process killed (SIGKILL) in the middle of a large add leaves a sound store."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from hashmem.memory import Memory

BATCH = 32
CHILD = """
import sys
from hashmem.memory import Memory
m = Memory(sys.argv[1], batch_size={batch})
texts = [f"observation number {{i}} about topic {{i % 17}} and place {{i % 5}}" for i in range(100000)]
m.add(texts, metadata=[{{"i": i}} for i in range(len(texts))], progress=False)
"""


def _count(path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM records").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_add_keeps_exactly_the_committed_batches(tmp_path):
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(batch=BATCH), str(path)])
    try:
        deadline = time.time() + 240
        while _count(path) < 3 * BATCH:
            assert proc.poll() is None, "the child ended before it could be killed"
            assert time.time() < deadline, "the child did not commit 3 batches in time"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with Memory(path) as m:  # opening runs the integrity check
        n = len(m)
        assert n >= 3 * BATCH and n % BATCH == 0
        m.storage.check(bits=m.config.bits, dim=m.config.dim, generation=m.hasher.generation, full=True)
        assert m.ids() == list(range(1, n + 1))
        for i in (1, n // 2, n):
            assert m.get(i).metadata == {"i": i - 1}
        top = m.search("observation number 5 about topic 5 and place 0", k=5)
        assert any(h.id == 6 for h in top)
        # the store keeps working after the crash
        assert m.add(["after the crash"]) == [n + 1]
