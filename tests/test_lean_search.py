"""The lean ``POST /v1/search`` path answers exactly as the FastAPI route does.

Two real servers over one store and one service — one with the lean path, one
without — get the same requests (good ones, bad ones, with and without keys)
and must give the same status and the same JSON. A direct ASGI test checks
that the lean path really answers a good search itself and hands every bad
one to the application.
"""

from __future__ import annotations

import anyio
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from conftest import PASSAGES  # noqa: E402

from hashmem.memory import Memory  # noqa: E402
from hashmem.server.app import SearchBody, create_app, running, search_hits  # noqa: E402
from hashmem.server.fastsearch import LeanSearch  # noqa: E402
from hashmem.server.service import Service  # noqa: E402

pytestmark = pytest.mark.slow
LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(lean client, route client, service, tokens) over one store with a read key and a revoked key."""
    mem = Memory(tmp_path_factory.mktemp("lean") / "store.db")
    mem.add(PASSAGES, namespace="docs", metadata=[{"n": i, "kind": "even" if i % 2 == 0 else "odd"}
                                                  for i in range(len(PASSAGES))])
    mem.add(["The other team keeps its vault code here: 4242."], namespace="other")
    tokens = {"docs": mem.add_key("reader", {"docs": "read", "empty": "read"}), "revoked": mem.add_key("gone", {"docs": "read"})}
    mem.revoke_key("gone")
    service = Service(mem, decoder="extractive")
    service.warm_up()
    with (running(create_app(service, max_body_bytes=LIMIT)) as lean_url,
          running(create_app(service, max_body_bytes=LIMIT, lean_search=False)) as route_url,
          httpx.Client(base_url=lean_url, timeout=120) as lean, httpx.Client(base_url=route_url, timeout=120) as route):
        yield lean, route, service, tokens
    mem.close()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _cases(tokens):
    ok = _bearer(tokens["docs"])
    q = {"query": "Nobel prize in physics", "namespace": "docs"}
    return [
        ("plain", {"json": {**q, "k": 3}}, ok),
        ("default k", {"json": q}, ok),
        ("where", {"json": {**q, "k": 8, "where": {"kind": "even"}}}, ok),
        ("where matching nothing", {"json": {**q, "where": {"kind": "none"}}}, ok),
        ("candidates", {"json": {**q, "k": 2, "candidates": 5}}, ok),
        ("recall", {"json": {**q, "k": 2, "recall": True}}, ok),
        ("non-ASCII query", {"json": {**q, "query": "Curie, née Skłodowska — physique"}}, ok),
        ("charset in the content type", {"content": b'{"query": "bread", "namespace": "docs"}',
                                         "headers": {"content-type": "application/json; charset=utf-8"}}, ok),
        ("a JSON subtype", {"content": b'{"query": "bread", "namespace": "docs"}',
                            "headers": {"content-type": "application/vnd.api+json"}}, ok),
        ("text content type", {"content": b'{"query": "bread", "namespace": "docs"}',
                               "headers": {"content-type": "text/plain"}}, ok),
        ("no content type", {"content": b'{"query": "bread", "namespace": "docs"}'}, ok),
        ("malformed JSON", {"content": b'{"query": ', "headers": {"content-type": "application/json"}}, ok),
        ("invalid UTF-8", {"content": b'{"query": "caf\xe9", "namespace": "docs"}',
                           "headers": {"content-type": "application/json"}}, ok),
        ("empty body", {"content": b"", "headers": {"content-type": "application/json"}}, ok),
        ("body not an object", {"json": ["query"]}, ok),
        ("wrong type of k", {"json": {**q, "k": "5"}}, ok),
        ("unknown field", {"json": {**q, "limit": 3}}, ok),
        ("k zero", {"json": {**q, "k": 0}}, ok),
        ("k too large", {"json": {**q, "k": 10**6}}, ok),
        ("candidates zero", {"json": {**q, "candidates": 0}}, ok),
        ("where value an object", {"json": {**q, "where": {"n": {"$gt": 1}}}}, ok),
        ("where key with a quote", {"json": {**q, "where": {"n') OR 1=1 --": 1}}}, ok),
        ("empty query", {"json": {**q, "query": " "}}, ok),
        ("NUL in the query", {"json": {**q, "query": "bread\u0000"}}, ok),
        ("a granted namespace with no passages", {"json": {**q, "namespace": "empty"}}, ok),
        ("a namespace not granted", {"json": {**q, "namespace": "nobody"}}, ok),
        ("another tenant's namespace", {"json": {**q, "namespace": "other"}}, ok),
        ("huge body", {"json": {**q, "query": "x" * (LIMIT + 1)}}, ok),
        ("huge body without a declared length", {"content": (b" " * 10_000 for _ in range(3)),
                                                 "headers": {"content-type": "application/json"}}, ok),
        ("missing key", {"json": q}, {}),
        ("missing key and malformed JSON", {"content": b"{", "headers": {"content-type": "application/json"}}, {}),
        ("missing key and a bad field", {"json": {**q, "k": "5"}}, {}),
        ("unknown key", {"json": q}, _bearer("hm_not-a-key")),
        ("not a bearer token", {"json": q}, {"Authorization": "Basic abc"}),
        ("revoked key", {"json": q}, _bearer(tokens["revoked"])),
    ]


def _comparable(r: httpx.Response):
    body = r.json()
    for hit in body.get("hits", []):
        hit.get("recall", {}).pop("ms", None)  # the decoder's own timing
    return r.status_code, r.headers["content-type"], body


def test_the_lean_path_answers_as_the_route_does(pair):
    lean, route, service, tokens = pair
    before = (service.memory.namespaces(), service.memory.ids())
    statuses = set()
    for what, kwargs, auth in _cases(tokens):
        kw = dict(kwargs)
        headers = {**kw.pop("headers", {}), **auth}
        if "content" in kw and not isinstance(kw["content"], bytes):  # a generator is consumed once
            kw_route = {"content": (b" " * 10_000 for _ in range(3))}
        else:
            kw_route = kw
        a = lean.post("/v1/search", headers=headers, **kw)
        b = route.post("/v1/search", headers=headers, **kw_route)
        assert _comparable(a) == _comparable(b), what
        if a.status_code != 200:
            msg = a.json()["error"]["message"]
            assert msg and "\n" not in msg, what
        statuses.add(a.status_code)
    assert statuses == {200, 400, 401, 403, 404, 413}
    assert (service.memory.namespaces(), service.memory.ids()) == before


def test_the_lean_path_hits_are_the_librarys(pair):
    lean, _, service, tokens = pair
    hits = lean.post("/v1/search", json={"query": "Nobel prize in physics", "k": 3, "namespace": "docs"},
                     headers=_bearer(tokens["docs"])).json()["hits"]
    direct = service.memory.search("Nobel prize in physics", 3, namespace="docs")
    assert [h["id"] for h in hits] == [h.id for h in direct]
    assert "Curie" in hits[0]["hints"]


def _call(middleware, body: bytes, headers: list[tuple[bytes, bytes]]):
    sent, parts = [], [body]

    async def receive():
        return {"type": "http.request", "body": parts.pop(), "more_body": False} if parts else {
            "type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/search", "raw_path": b"/v1/search", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    anyio.run(middleware, scope, receive, send)
    return sent


def test_a_good_search_never_reaches_the_application_and_a_bad_one_does(pair):
    _, _, service, tokens = pair
    handed = []

    async def application(scope, receive, send):
        message = await receive()
        handed.append(message["body"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    lean = LeanSearch(application, service=service, body_model=SearchBody, to_dicts=search_hits)
    auth = (b"authorization", f"Bearer {tokens['docs']}".encode())
    good = _call(lean, b'{"query": "bread", "namespace": "docs", "k": 2}', [(b"content-type", b"application/json"),
                                                                              auth])
    assert handed == [] and good[0]["status"] == 200
    assert b'"hits":[' in good[1]["body"]
    bad = b'{"query": "bread", "k": "two"}'
    assert _call(lean, bad, [(b"content-type", b"application/json"), auth])[0]["status"] == 418
    assert handed == [bad]  # the whole body, as the client sent it
