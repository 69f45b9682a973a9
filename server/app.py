"""The HTTP JSON API: FastAPI routes over a ``Service``, and ``serve`` (uvicorn).

Routes (``/v1``; OpenAPI at ``/docs`` and ``/openapi.json``):

- ``GET /v1/health`` (no key needed);
- ``POST /v1/passages`` (texts + metadata, one namespace) and ``POST /v1/documents`` (chunked);
- ``POST /v1/search`` (query, k, namespace, where, candidates, optional ``recall``);
- ``GET /v1/passages/{id}``, ``DELETE /v1/passages/{id}``, ``POST /v1/passages/{id}/recall``,
  ``POST /v1/recall`` (several ids);
- ``POST /v1/ask`` (JSON, or server-sent events with ``"stream": true``);
- ``POST /v1/compact`` (max_bytes, optional namespace: demote exact texts to meet a byte budget);
- ``POST /v1/summarize`` (query, k, namespace, sentences, method): a summary citing its memories;
- ``GET /v1/stats``.

Every error is ``{"error": {"code": ..., "message": ...}}`` with one line of
message and its status (``errors.describe``); never a stack trace. Handlers are
plain functions, so they run in the server's threadpool; the ``Service``
decides what may run at once. Bodies over ``max_body_bytes`` are refused
(413) before they are read whole.

What it does not do: decide who may do what (``tenancy``) or touch the store
other than through ``Service``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hashmem.cli.render import answer_dict, hit_dict, reconstruction_dict, summary_dict
from hashmem.memory import HashmemError, __version__

from .errors import ApiError, describe
from .fastsearch import LeanSearch
from .service import MAX_CANDIDATES, MAX_K, Service
from .tenancy import Principal, principal_for

log = logging.getLogger("hashmem.server")
DEFAULT_MAX_BODY = 8 * 1024 * 1024
JSONScalar = str | int | float | bool | None
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A record id.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AddPassages(_Body):
    texts: list[str] = Field(min_length=1, description="Passages to store (non-empty text, no NUL).")
    namespace: str = Field("default", min_length=1, max_length=256, description="The one namespace they go to.")
    metadata: dict[str, Any] | list[dict[str, Any]] | None = Field(
        None, description="One object for all texts, or one per text.")
    dedup: Literal["keep", "skip", "replace"] = Field(
        "keep", description="keep: store every text; skip: not one repeating a passage of the namespace (or an "
        "earlier text of this request): its position gets the matched id, listed in `matches`; replace: as skip, "
        "but the matched passage takes the newer text and metadata (its id stays).")


class AddDocuments(_Body):
    documents: list[str] = Field(min_length=1, description="Documents, chunked into passages.")
    namespace: str = Field("default", min_length=1, max_length=256)
    metadata: dict[str, Any] | list[dict[str, Any]] | None = None
    passage_tokens: int = Field(128, ge=16, le=4096, description="About this many tokens per passage.")


class SearchBody(_Body):
    query: str = Field(min_length=1, description="What to search for.")
    k: int = Field(10, description=f"Hits to return, 1 to {MAX_K}.")
    namespace: str = Field("default", min_length=1, max_length=256)
    where: dict[str, JSONScalar] | None = Field(None, description="Metadata equality filter, e.g. {\"session\": 3}.")
    candidates: int | None = Field(None, description=f"Passages reranked with int8 vectors (1 to {MAX_CANDIDATES}).")
    recall: bool = Field(False, description="Also rebuild each hit's text (exact in a text-tier store).")
    mode: Literal["binary+int8", "hybrid"] = Field(
        "hybrid", description="hybrid (default): the int8 cosine blended with BM25 of the query's words (scores in "
                              "[0, 1]); binary+int8: vectors only (scores are cosines).")
    lexical_weight: float | None = Field(None, ge=0, le=1, description="BM25's share in hybrid (default: the "
                                                                       "store's, by fidelity).")
    recency_weight: float = Field(0.0, ge=0, le=1, description="Newer passages' boost when scores tie closely: "
                                  "each candidate's score + weight × its newness in [0, 1] (0: off).")


class RecallBody(_Body):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=MAX_K, description=f"Record ids, 1 to {MAX_K} (llm bodies decode together).")


class CompactBody(_Body):
    max_bytes: int = Field(ge=1, description="The budget: the store's size in bytes (a local store: its file).")
    namespace: str | None = Field(None, min_length=1, max_length=256, description="Demote only this namespace's "
                                  "texts (default: any; needs an unrestricted key).")


class AskBody(_Body):
    question: str = Field(min_length=1)
    k: int = Field(5, description=f"Memories recalled, 1 to {MAX_K}.")
    namespace: str = Field("default", min_length=1, max_length=256)
    stream: bool = Field(False, description="Stream tokens as server-sent events (`token`, then `answer`).")


class SummarizeBody(_Body):
    query: str = Field(min_length=1, description="What to summarize the memories about.")
    k: int = Field(5, description=f"Memories recalled, 1 to {MAX_K}.")
    namespace: str = Field("default", min_length=1, max_length=256)
    sentences: int = Field(3, ge=1, le=20, description="Sentences, at most.")
    method: Literal["extractive", "model"] | None = Field(
        None, description="extractive: the memories' top sentences; model: written by the llama model, then "
                          "checked (default: the server's decoder's).")


async def _principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The request's principal (``tenancy``): every /v1 route but health depends on it.

    Async (on the event loop) because it is one indexed SQLite lookup: a thread hop would cost more.
    """
    return principal_for(request.app.state.service.memory, authorization)


Who = Annotated[Principal, Depends(_principal)]


def search_hits(service: Service, who: Principal, body: SearchBody) -> list[dict]:
    """The hits of a search request as JSON objects, each with its recall when ``body.recall``."""
    hits = service.search(who, body.query, body.k, namespace=body.namespace, where=body.where,
                          candidates=body.candidates, mode=body.mode, lexical_weight=body.lexical_weight,
                          recency_weight=body.recency_weight)
    out = [hit_dict(h) for h in hits]
    if body.recall:
        for d, r in zip(out, service.recall_many(who, [h.id for h in hits]), strict=True):
            d["recall"] = reconstruction_dict(r)
    return out


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes (declared or streamed), before it is read whole."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        def too_big():
            return error_response(413, "body_too_large", f"the request body is over {self.limit} bytes")

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await too_big()(scope, receive, send)
        seen, over, answered = 0, False, False

        async def limited():  # past the limit, the app sees the body end there (and its answer is replaced)
            nonlocal seen, over
            if over:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # end the body with a NUL byte: never valid JSON, so nothing is stored
                    over = True
                    return {"type": "http.request", "body": b"\x00", "more_body": False}
            return message

        async def guarded(message):
            nonlocal answered
            if not over:
                return await send(message)
            if not answered:
                answered = True
                await too_big()(scope, receive, send)

        await self.app(scope, limited, guarded)


def create_app(service: Service, *, max_body_bytes: int = DEFAULT_MAX_BODY, lean_search: bool = True) -> FastAPI:
    """The FastAPI application over one service.

    Args:
        service: the open store and its models.
        max_body_bytes: larger request bodies get 413.
        lean_search: answer well-formed ``POST /v1/search`` requests on the lean path
            (``fastsearch``); False leaves every request to the FastAPI routes.
    """
    app = FastAPI(title="hashmem", version=__version__,
                  description="A retrieval memory: passages kept as binary codes, int8 vectors and hints.")

    @app.exception_handler(ApiError)
    @app.exception_handler(HashmemError)
    @app.exception_handler(Exception)  # (the last resort: 500, logged, no details to the client)
    async def _any_error(request: Request, exc: Exception):
        status, code, message = describe(exc)
        if status == 500:
            log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(status, code, message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        err = (exc.errors() or [{}])[0]
        if err.get("type") == "json_invalid":
            return error_response(400, "invalid_json", "the request body is not valid JSON")
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        msg = str(err.get("msg", "invalid value")).splitlines()[0]
        return error_response(400, "invalid_input", f"{where}: {msg}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # the body could not be parsed at all (e.g. invalid UTF-8)
            return error_response(400, "invalid_json", "the request body is not valid JSON in UTF-8")
        code = {404: "no_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail).splitlines()[0])

    if lean_search:  # inside the body limit: it reads bodies already limited
        app.add_middleware(LeanSearch, service=service, body_model=SearchBody, to_dicts=search_hits)
    app.add_middleware(BodyLimit, limit=max_body_bytes)

    app.state.service = service
    @app.get("/v1/health", tags=["meta"])
    def health() -> dict:
        """Liveness: the server answers and the store is open."""
        return {"status": "ok", "version": __version__}

    @app.post("/v1/passages", status_code=201, tags=["write"])
    def add_passages(body: AddPassages, who: Who) -> dict:
        """Store passages in one namespace; returns their ids in order (and the repeats ``dedup`` skipped or replaced)."""
        matches: list = []
        ids = service.add(who, body.texts, namespace=body.namespace, metadata=body.metadata, dedup=body.dedup,
                          matches=matches)
        return {"ids": ids, "matches": [{"position": m.position, "id": m.id, "score": round(m.score, 4),
                                         "exact": m.exact} for m in matches]}

    @app.post("/v1/documents", status_code=201, tags=["write"])
    def add_documents(body: AddDocuments, who: Who) -> dict:
        """Chunk documents into passages and store them; returns the passages' ids."""
        return {"ids": service.add_documents(who, body.documents, namespace=body.namespace,
                                             metadata=body.metadata, passage_tokens=body.passage_tokens)}

    @app.post("/v1/search", tags=["read"], response_class=JSONResponse)
    def search(body: SearchBody, who: Who):
        """The k passages of a namespace nearest to the query, best first: ``{"hits": [...]}``."""
        return JSONResponse({"hits": search_hits(service, who, body)})  # plain JSON: no response validation

    @app.get("/v1/passages/{id}", tags=["read"])
    def get(id: RecordId, who: Who) -> dict:
        """Everything stored of one passage (the exact text only in a text-tier store)."""
        r = service.get(who, id)
        return {"id": r.id, "namespace": r.namespace, "created": r.created, "metadata": r.metadata,
                "hints": r.hints, "text": r.text, "code": r.code.tobytes().hex(), "qvec": r.qvec.tolist()}

    @app.delete("/v1/passages/{id}", tags=["write"])
    def delete(id: RecordId, who: Who) -> dict:
        """Delete one passage."""
        return {"deleted": service.delete(who, [id])}

    @app.post("/v1/passages/{id}/recall", tags=["read"])
    def recall(id: RecordId, who: Who) -> dict:
        """Rebuild a passage from its hints, vector and code (exact in a text-tier store)."""
        return reconstruction_dict(service.recall(who, id))

    @app.post("/v1/recall", tags=["read"])
    def recall_many(body: RecallBody, who: Who) -> dict:
        """Rebuild several passages at once, in the order given (an llm store decodes their bodies together)."""
        return {"recalls": [reconstruction_dict(r) for r in service.recall_many(who, body.ids)]}

    @app.post("/v1/ask", tags=["read"])
    def ask(body: AskBody, who: Who):
        """Answer a question from a namespace's memories only, citing them as [id]."""
        if not body.stream:
            asked = service.ask(who, body.question, body.k, namespace=body.namespace)
            return answer_dict(asked.answer, asked.hits)
        service.search(who, body.question, body.k, namespace=body.namespace)  # errors before the stream starts
        return StreamingResponse(_sse(service, who, body), media_type="text/event-stream")

    @app.post("/v1/compact", tags=["write"])
    def compact(body: CompactBody, who: Who) -> dict:
        """Demote exact texts to hints-only, least recently used first, until the store fits ``max_bytes``."""
        return dataclasses.asdict(service.compact(who, body.max_bytes, namespace=body.namespace))
    @app.post("/v1/summarize", tags=["read"])
    def summarize(body: SummarizeBody, who: Who) -> dict:
        """Summarize what a namespace's memories hold about a query; every sentence cites its memories as [id]."""
        done = service.summarize(who, body.query, body.k, namespace=body.namespace, max_sentences=body.sentences,
                                 method=body.method)
        return summary_dict(done.answer, done.hits)

    @app.get("/v1/stats", tags=["read"])
    def stats(who: Who) -> dict:
        """Passages per namespace this key may read, and the store's settings."""
        return service.stats(who)

    return app


def _sse(service: Service, who: Principal, body: AskBody):
    """Server-sent events of an answer: ``token`` events, then one ``answer`` (or ``error``) event."""
    events: queue.Queue = queue.Queue()

    def run():
        try:
            asked = service.ask(who, body.question, body.k, namespace=body.namespace,
                                on_token=lambda piece: events.put(("token", {"text": piece})))
            events.put(("answer", answer_dict(asked.answer, asked.hits)))
        except Exception as e:  # noqa: BLE001 - reported to the client as one event
            status, code, message = describe(e)
            events.put(("error", {"error": {"code": code, "message": message}}))
        events.put(None)

    threading.Thread(target=run, daemon=True).start()
    while (item := events.get()) is not None:
        name, data = item
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(memory, *, host: str = "127.0.0.1", port: int = 8080, max_body_bytes: int = DEFAULT_MAX_BODY,
          decoder: str = "auto", model: str | None = None, log_level: str = "info") -> None:
    """Run the HTTP server until interrupted (models load before it listens).

    Raises:
        ApiError: ``host`` is not a loopback address and the store has no valid API key.
    """
    import uvicorn

    if not is_loopback(host) and not any(k.active for k in memory.keys()):
        raise ApiError(400, "no_keys", f"refusing to listen on {host}: the store has no API key; "
                                       "add one with `hashmem keys add`, or listen on 127.0.0.1")
    service = Service(memory, decoder=decoder, model=model)
    service.warm_up(decoder=True)
    uvicorn.run(create_app(service, max_body_bytes=max_body_bytes), host=host, port=port,
                log_level=log_level, access_log=False)


@contextmanager
def running(app, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> Iterator[str]:
    """Run an app with uvicorn in a background thread; yields its base URL, stops it on exit.

    ``port=0`` picks a free port (tests, benchmarks, embedding a server in a program).

    Raises:
        RuntimeError: the server did not start within ``timeout`` seconds.
    """
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="hashmem-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
