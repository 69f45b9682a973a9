"""``POST /v1/search`` on a lean ASGI path: the request that a RAG backend makes most, with less per-call cost.

FastAPI's route for a search costs about half a millisecond of routing,
dependency solving and exception middleware around a call of a few
milliseconds. ``LeanSearch`` answers a well-formed search itself:

1. the body, already limited by ``app.BodyLimit``, is read and validated by
   ``SearchBody.model_validate_json`` (the same model as the FastAPI route);
2. the principal comes from ``tenancy.principal_for``, as for every route;
3. ``Service.search`` runs in the server's threadpool (as a sync FastAPI route
   does), so searches still run side by side while an add is stored;
4. the hits go out as ``app.JSONResponse`` would render them, byte for byte.

Anything else — another route, a body that is not JSON, fails validation or
is declared with another content type — is handed, body and all, to the
FastAPI application, so every error keeps the route's status, code and
message. An error of the search itself goes through ``errors.describe`` like
any route's. The FastAPI route stays, for OpenAPI and as the reference the
tests compare this path with.

What it does not do: any other route, or decide who may read what (``tenancy``).
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from .errors import describe
from .tenancy import principal_for

log = logging.getLogger("hashmem.server")
PATH = "/v1/search"
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


def render(content) -> bytes:
    """JSON as ``starlette.responses.JSONResponse`` renders it."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class LeanSearch:
    """ASGI middleware: serves ``POST /v1/search`` directly; every other request goes to ``app``.

    Args:
        app: the FastAPI application (below the body limit).
        service: the open store and its models.
        body_model: the search body's pydantic model (``app.SearchBody``).
        to_dicts: (service, principal, body) → the response's ``hits`` list (``app.search_hits``).
    """

    def __init__(self, app, *, service, body_model, to_dicts) -> None:
        self.app, self.service, self.body_model, self.to_dicts = app, service, body_model, to_dicts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw, body = b"".join(chunks), None
        if headers.get(b"content-type", b"").lower() in _JSON_TYPES:
            try:
                body = self.body_model.model_validate_json(raw)
            except ValidationError:
                pass
        if body is None:  # the route says what is wrong (or reads another content type)
            return await self.app(scope, _replay(raw, receive), send)
        try:
            auth = headers.get(b"authorization")
            who = principal_for(self.service.memory, auth.decode("latin-1") if auth is not None else None)
            status, content = 200, await run_in_threadpool(self._search, who, body)
        except Exception as exc:  # noqa: BLE001 - every error is answered as the routes answer it
            status, code, message = describe(exc)
            if status == 500:
                log.exception("internal error on POST %s", PATH, exc_info=exc)
            content = {"error": {"code": code, "message": message}}
        payload = render(content)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(payload)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    def _search(self, who, body) -> dict:
        """The route's work, in a worker thread: hits, and each hit's recall when asked."""
        return {"hits": self.to_dicts(self.service, who, body)}


def _replay(raw: bytes, receive):
    """A ``receive`` that gives the already-read body once, then the client's later messages."""
    sent = False

    async def again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return again
