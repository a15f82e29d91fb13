"""The HTTP API: FastAPI routes over a `Service` (`serve/service.py`), with keys, limits and metrics.

Routes (OpenAPI docs at `/docs`; the README shows a curl call of each):

    GET    /                         the web page (`serve/page.html`)
    POST   /recommend                {"user_id"?, "history"?, "k": 10, "exclude_seen": true} -> items and scores
    GET    /items?q=&limit=          items whose title holds every word of q
    GET    /items/{item_id}          one item
    GET    /items/{item_id}/similar  its nearest items (?k=)
    POST   /items              key   {"item_id", "title", ...text fields}: a new item, recommendable at once
    POST   /feedback           key   one event or a list: {"user_id", "item_id", "event", "value"?, "timestamp"?}
    GET    /explain            key   ?user_id=&item_id=: why this item for this user
    GET    /users/{user_id}    key   the user's known history and stored events
    DELETE /users/{user_id}    key   erase them
    POST   /admin/reload       key   {"model_dir"?}: load a model beside the serving one and swap it in
    GET    /health/live, /health/ready, /metrics (Prometheus text)

"key": the request needs `Authorization: Bearer <key>` (compared in constant time; 401 without it);
`/recommend` too unless `ServeSettings.open_recommend` is on (a user's list tells what the user has). Bad input is a 422 whose `message` names the
field; an unknown id a 404; an item id that exists or a model that cannot do what was asked a 409; a body over
`max_body_bytes` a 413. Every request is counted in `/metrics` by route, method and status, with its latency.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from distillrec.serve.service import Conflict, NotFound, Service
from distillrec.serve.store import Event

__all__ = ["ServeSettings", "make_app", "MAX_K", "MAX_HISTORY", "MAX_EVENTS"]

MAX_K = 1000  # items one request may ask for
MAX_HISTORY = 1000  # items a request's history may hold
MAX_EVENTS = 1000  # events one feedback request may hold
MAX_ID = 256  # characters of a user or item id
MAX_TEXT = 10_000  # characters of one text field of a posted item
MAX_FIELDS = 20  # text fields of a posted item

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]


@dataclass(frozen=True)
class ServeSettings:
    api_key: str  # what `Authorization: Bearer <key>` must carry
    # True: /recommend answers without the key. Anyone may then ask for any user's list, which tells what the
    # user has (exclude_seen on and off): for public catalogues and demos only
    open_recommend: bool = False
    recommend_on_loop: bool = (
        True  # compute /recommend on the event loop (a local store: SQLite), else in threads
    )
    max_body_bytes: int = 1_000_000
    engine_options: dict | None = None  # how /admin/reload builds an engine (`service.build_engine`)


class RecommendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = None
    history: list[Id] = Field(default_factory=list, max_length=MAX_HISTORY)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True

    @model_validator(mode="after")
    def _asks_something(self) -> RecommendIn:
        if self.user_id is None and not self.history:
            raise ValueError("give user_id, history, or both")
        return self


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    item_id: Id
    event: str = Field("click", pattern=r"^[A-Za-z0-9_.:-]{1,32}$")
    value: float | None = None
    timestamp: float | None = Field(None, ge=0, le=1e11, description="unix seconds; default: when received")

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class ItemIn(BaseModel):
    """A new item: its id, its title and any other text fields the teacher's template reads (genres, ...)."""

    model_config = ConfigDict(extra="allow")
    item_id: Id
    title: str = Field(min_length=1, max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _text_fields(self) -> ItemIn:
        extra = self.model_extra or {}
        if len(extra) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} text fields beside item_id and title")
        for name, value in extra.items():
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise ValueError(f"field {name!r} must be a string of at most {MAX_TEXT} characters")
        return self

    def fields(self) -> dict[str, str]:
        return {"title": self.title, **(self.model_extra or {})}


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_dir: str | None = None


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "distillrec_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "distillrec_request_seconds",
            "request latency",
            ["route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.errors = Counter(
            "distillrec_errors", "responses with a 5xx status", ["route"], registry=self.registry
        )
        self.items = Gauge(
            "distillrec_items", "items in the catalogue (known and posted)", registry=self.registry
        )


def _message(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def make_app(service: Service, settings: ServeSettings) -> FastAPI:
    app = FastAPI(
        title="distillrec",
        summary="Recommendations from a distilled student, with live feedback and new items by their text.",
    )
    app.state.service = service
    metrics = _Metrics()
    page = resources.files("distillrec.serve").joinpath("page.html").read_text(encoding="utf-8")
    key = settings.api_key.encode()

    async def require_key(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key):
            raise _Unauthorized()

    async def recommend_key(request: Request) -> None:
        if not settings.open_recommend:
            await require_key(request)

    keyed = [Depends(require_key)]
    app.add_middleware(_Counted, metrics=metrics, max_body_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"message": _message(errors), "detail": errors}, status_code=422)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"message": "this endpoint needs the API key: Authorization: Bearer <key>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"message": str(exc.args[0])}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"message": str(exc)}, status_code=409)

    @app.exception_handler(ValueError)
    async def _bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"message": str(exc)}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    def recommend(body: RecommendIn) -> JSONResponse:
        """Top-k items for a user (their known history and stored feedback), a history, or both."""
        return JSONResponse(service.recommend(body.user_id, body.history, body.k, body.exclude_seen))

    async def recommend_on_loop(body: RecommendIn) -> JSONResponse:
        """Top-k items for a user (their known history and stored feedback), a history, or both."""
        return recommend(body)

    # On the event loop (about a millisecond of CPU and a local SQLite read): no thread hop, no threads contending
    # for the GIL, 2x the throughput on 2 cores. With a database over the network, in the thread pool, so a slow
    # database does not stall the loop; the endpoints that write (an fsync) or take longer always run there.
    endpoint = recommend_on_loop if settings.recommend_on_loop else recommend
    app.post("/recommend", dependencies=[Depends(recommend_key)], name="recommend")(endpoint)

    @app.get("/items")
    def search(
        q: Annotated[str, Query(max_length=200)] = "", limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> dict:
        """Items whose title holds every word of `q` (most interactions first)."""
        return {"items": service.search(q, limit)}

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict:
        return service.item(item_id)

    @app.get("/items/{item_id}/similar")
    def similar(item_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> dict:
        """The item's nearest neighbours in the model's item space (posted items included)."""
        return service.similar(item_id, k)

    @app.post("/items", dependencies=keyed, status_code=201)
    def post_item(body: ItemIn) -> dict:
        """A new item by its text: encoded by the teacher's text encoder, recommendable in the next request."""
        answer = service.post_item(body.item_id, body.fields())
        metrics.items.set(len(service.engine.item_ids))
        return answer

    @app.post("/feedback", dependencies=keyed)
    def feedback(
        body: FeedbackIn | Annotated[list[FeedbackIn], Field(min_length=1, max_length=MAX_EVENTS)],
    ) -> JSONResponse:
        """One event or a list, stored durably before the answer; the user's next /recommend reads them."""
        events = body if isinstance(body, list) else [body]
        now = time.time()
        stored = service.feedback(
            [
                Event(e.user_id, e.item_id, e.event, e.value, now if e.timestamp is None else e.timestamp)
                for e in events
            ]
        )
        return JSONResponse({"stored": stored})

    @app.get("/explain", dependencies=keyed)
    def explain(
        user_id: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
        item_id: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
    ) -> dict:
        """Why this item for this user: its rank, the history items most like it, the teacher's rank of it."""
        return service.explain(user_id, item_id)

    @app.get("/users/{user_id}", dependencies=keyed)
    def user(user_id: str) -> dict:
        return service.user(user_id)

    @app.delete("/users/{user_id}", dependencies=keyed)
    def erase(user_id: str) -> dict:
        """Erase the user's stored events; their known history is no longer read or shown."""
        return service.erase(user_id)

    @app.post("/admin/reload", dependencies=keyed)
    def reload(body: ReloadIn | None = None) -> dict:
        """Load a model folder (default: the one serving) beside the serving one and swap it in atomically."""
        answer = service.reload(body.model_dir if body else None, **(settings.engine_options or {}))
        metrics.items.set(len(service.engine.item_ids))
        return answer

    @app.get("/health/live")
    def live() -> dict:
        return {"status": "live"}

    @app.get("/health/ready")
    def ready() -> dict:
        engine = service.engine
        service.store.ping()
        return {
            "status": "ready",
            "model": type(engine.model).__name__,
            "model_dir": str(engine.path),
            "items": len(engine.item_ids),
            "index": engine.index.kind if engine.index is not None else "model",
            "index_recall_at_10": engine.recall_at_10,
            "store": repr(service.store),
            "text": engine.knowledge is not None,
            "teacher": bool(engine.knowledge and engine.knowledge.teacher),
        }

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        metrics.items.set(len(service.engine.item_ids))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class _Unauthorized(Exception):
    pass


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Counted:
    """ASGI middleware: a body over `max_body_bytes` (by its Content-Length) is a 413; every request is counted
    by route, method and status, with its latency."""

    def __init__(self, app, metrics: _Metrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sent(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        received = 0

        async def counted() -> dict:  # a chunked body has no Content-Length: count what arrives
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise HTTPException(413, f"request body over {self.max_body_bytes} bytes")
            return message

        length = dict(scope["headers"]).get(b"content-length")
        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                too_big = JSONResponse(
                    {"message": f"request body over {self.max_body_bytes} bytes"}, status_code=413
                )
                await too_big(scope, receive, sent)
            else:
                await self.app(scope, counted, sent)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(route, method, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            if status[0] >= 500:
                self.metrics.errors.labels(route).inc()
