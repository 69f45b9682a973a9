"""What the namespace index costs and saves in a one-namespace store (format 3 creates it only for a second one).

    .venv/bin/python benchmarks/store_size.py --keep /tmp/hashmem-size      # the 100k mixed store
    .venv/bin/python benchmarks/namespace_index.py /tmp/hashmem-size/mixed.db [--out benchmarks/results/namespace_index.json]

On a copy of the store (one namespace, no index), times the ``Storage`` calls that filter
by namespace — ``live_ids``, ``count`` (all, and of the namespace), ``namespaces``,
``filter_ids`` and a full ``iter_qvecs`` of the namespace — and the same calls on a second copy
given the index (``records(namespace)``), alternating, and reports the index's bytes per passage
and, per call, the median seconds without and with it and their ratio. Both sides run in
this one process, after one untimed round, so a busy machine slows both alike; only ratios
are meant to be compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from hashmem.memory.backends.local.interning import NAMESPACE_INDEX
    from hashmem.memory.backends.local.storage import Storage
    from hashmem.memory.filters import Where

    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashmem-nsidx-") as tmp:
        stores = {}
        for side in ("without", "with"):
            path = Path(tmp) / f"{side}.db"
            shutil.copyfile(args.store, path)
            stores[side] = Storage(path, create=False)
        st = stores["without"]
        if not st.batch_times or st.conn.execute("SELECT 1 FROM sqlite_master WHERE type='index'").fetchone():
            raise SystemExit(f"{args.store}: not a format 3 store without the namespace index")
        before = st.file_bytes()
        with stores["with"].transaction() as c:
            c.execute(NAMESPACE_INDEX)
        stores["with"].checkpoint()
        index_bytes = stores["with"].file_parts().get("namespace_index", 0)
        (ns,) = st.namespaces()
        n = st.count()
        last = st.last_id()
        row = st.fetch([last])[last]
        dim, source = len(row.qvec), row.metadata.get("source", "")

        def calls(s: Storage) -> dict:
            return {
                "live_ids": lambda: s.live_ids(ns, last),
                "count()": lambda: s.count(),
                "count(namespace)": lambda: s.count(ns),
                "namespaces()": lambda: s.namespaces(),
                "filter_ids(source)": lambda: s.filter_ids(ns, Where.parse({"source": source})),
                "iter_qvecs(namespace)": lambda: sum(len(i) for i, _ in s.iter_qvecs(dim, namespace=ns)),
            }

        names = list(calls(st))
        times: dict[str, dict[str, list[float]]] = {c: {"without": [], "with": []} for c in names}
        answers: dict[str, dict] = {c: {} for c in names}
        for rep in range(args.repeat + 1):  # the first round warms the page cache, untimed
            for side, s in stores.items():  # alternating: a busy machine slows both alike
                for name, call in calls(s).items():
                    t = time.perf_counter()
                    out = call()
                    if rep:
                        times[name][side].append(time.perf_counter() - t)
                    answers[name][side] = len(out) if hasattr(out, "__len__") else out
        for s in stores.values():
            s.close()
    result = {"store": str(args.store), "passages": n, "namespaces": 1, "repeat": args.repeat,
              "index_bytes_per_passage": round(index_bytes / n, 1),
              "index_over_file_without": round(index_bytes / before, 4),
              "calls": {}}
    for name in names:
        a, b = statistics.median(times[name]["without"]), statistics.median(times[name]["with"])
        if answers[name]["without"] != answers[name]["with"]:
            raise SystemExit(f"{name}: {answers[name]} differ with and without the index")
        result["calls"][name] = {"median_s_without": round(a, 5), "median_s_with": round(b, 5),
                                 "without_over_with": round(a / b, 2) if b else None,
                                 "answer": answers[name]["without"]}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
