"""A chatbot's RAG backend over HTTP: another process (any language) calls `hashmem serve`.

This script is the chatbot side. It only speaks HTTP (httpx): it uploads the
documents once, then for each question retrieves passages and builds the chat
prompt. With `--url` it talks to a server you run yourself
(`hashmem --store docs.db serve --port 8080`); without it, it starts one on a
free loopback port for the demo and stops it at the end, serving a temporary
local store, or the store given by `--store` / `$HASHMEM_STORE` (a path or a
`milvus://HOST:PORT/COLLECTION` URI; documents are uploaded once).

The store is created with `hashmem init --fidelity text` so search hits come
back with the exact passage (`recall`), which the prompt quotes.

Run:  python examples/http_chatbot.py "what did Lincoln say about malice?"
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx

TEXTS = Path(__file__).parent / "texts"
HASHMEM = [sys.executable, "-c", "from hashmem.cli.main import main; main()"]


@contextmanager
def local_server(store: Path | str):
    """`hashmem serve --port 0` in a child process; yields its URL (read from uvicorn's log)."""
    subprocess.run([*HASHMEM, "--store", str(store), "init", "--fidelity", "text"], check=True,
                   capture_output=True)
    proc = subprocess.Popen([*HASHMEM, "--store", str(store), "serve", "--port", "0", "--decoder", "extractive"],
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if m := re.search(r"running on (http://\S+)", line):
                yield m.group(1)
                break
        else:
            raise RuntimeError("hashmem serve stopped before listening")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def upload(client: httpx.Client) -> int:
    if client.get("/v1/stats").json().get("namespaces", {}).get("docs"):  # uploaded by an earlier run
        return 0
    docs = sorted(TEXTS.glob("*.txt"))
    r = client.post("/v1/documents", json={
        "documents": [p.read_text(encoding="utf-8") for p in docs],
        "metadata": [{"source": p.name} for p in docs],
        "namespace": "docs", "passage_tokens": 96})
    r.raise_for_status()
    return len(r.json()["ids"])


def chat_prompt(client: httpx.Client, question: str, k: int = 3) -> str:
    r = client.post("/v1/search", json={"query": question, "k": k, "namespace": "docs", "recall": True})
    if r.status_code != 200:  # errors are {"error": {"code", "message"}}
        raise SystemExit(f"search failed: {r.json()['error']['message']}")
    blocks = "\n\n".join(f"[{h['id']}] ({h['metadata']['source']})\n{h['recall']['text']}" for h in r.json()["hits"])
    return ("Answer the question using only the passages below; cite them like [12].\n\n"
            f"<passages>\n{blocks}\n</passages>\n\nQuestion: {question}\nAnswer:")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("question", nargs="*", default=["what did Lincoln say about malice?"])
    ap.add_argument("--url", help="a running hashmem server (default: start one for the demo)")
    ap.add_argument("--key", help="an API key, if the server has keys")
    ap.add_argument("--store", default=os.environ.get("HASHMEM_STORE"),
                    help="the store the demo server serves: a path or milvus:// URI (default: $HASHMEM_STORE, "
                         "else a temporary local store)")
    args = ap.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    with tempfile.TemporaryDirectory() as tmp, (
            local_server(args.store or Path(tmp) / "docs.db") if not args.url else nullcontext(args.url)) as url:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            print(f"server {url}: {client.get('/v1/health').json()['status']}")
            print(f"uploaded {upload(client)} passages")
            print(chat_prompt(client, " ".join(args.question)))


if __name__ == "__main__":
    main()
