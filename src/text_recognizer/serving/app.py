"""The FastAPI app: ``GET /`` the page, ``POST /api/recognize`` an image in, text out.

A pool of :class:`~text_recognizer.recognizer.Recognizer` objects (``workers``; the CLI
gives each ONNX Runtime a share of the cores) reads that many images at once, each
Recognizer one image at a time: the beam-search decoder is not documented as safe to
share between threads. At most ``queue`` requests wait for a free one, counted from when
their upload starts (so that slow uploads, each held in memory, are bounded too), none
longer than ``max_wait`` seconds; beyond either they get 503 with a Retry-After, so that
under load a client learns at once to come back (or try another server) rather than hang.
An upload from which nothing arrives for ``upload_timeout`` seconds (by default
``max_wait``) gets 408 and gives up its place: a client gone without closing its
connection would hold it for ever.

Uploads are capped in bytes before they are parsed (``UploadLimit``), and in pages and
pixels (all pages' together, and each page's: the recognizers' ``max_image_pixels``)
before any page is decoded: a multi-page TIFF of a few kB may hold thousands of pages.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
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
from pydantic import BaseModel
from starlette.datastructures import FormData, Headers
from starlette.datastructures import UploadFile as FormFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from text_recognizer import __version__
from text_recognizer.errors import ImageError, TextRecognizerError
from text_recognizer.images import Pages
from text_recognizer.page_xml import page_xml
from text_recognizer.recognizer import Recognizer, Result

#: Default cap on one request's body: a photographed page is 2-8 MB as JPEG.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Slower than this over a whole ``upload_timeout`` window, an upload is refused (408): a client
#: trickling a byte now and then would otherwise hold its place for ever. A phone on a
#: poor 2G link still sends several KB a second.
MIN_UPLOAD_BYTES_PER_S = 1024
#: Default bound on the requests waiting for a free worker (each holds its upload).
QUEUE = 16
#: Default bound on how long one waits, in seconds: a client's or proxy's own timeout is
#: commonly 30-60 s, and an answer after it is lost work.
MAX_WAIT = 30.0
#: Default caps on one request's pages (a multi-page TIFF) and their pixels together: 51
#: A4 pages scanned at 200 dpi (3.9 M pixels each), or 23 at 300 dpi (8.7 M).
MAX_PAGES = 50
MAX_DOCUMENT_PIXELS = 200_000_000

PAGE = Path(__file__).with_name("static") / "index.html"

ReadKind = Literal["auto", "char", "line", "paragraph"]
T = TypeVar("T")
Format = Literal["json", "page-xml"]


class Metrics:
    """The service's Prometheus metrics, in a registry of its own so that several apps
    (tests, one process serving two models) never clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.images = Counter(
            "text_recognizer_images",
            "Images received, by what they were read as (kind) and how it went (outcome).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "text_recognizer_recognize_seconds",
            "Time to read one image (decoding, preprocessing, network, decoding).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.too_large = Counter(
            "text_recognizer_uploads_too_large",
            "Requests refused because their body was over the upload limit.",
            registry=self.registry,
        )
        self.unread = Counter(
            "text_recognizer_requests_unread",
            "Requests not read: queue_full and waited_too_long were answered 503, "
            "upload_stalled 408, client_gone had left before their turn (while their "
            "upload arrived or while they waited).",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("queue_full", "waited_too_long", "upload_stalled", "client_gone"):
            self.unread.labels(reason=reason)  # shown as 0 until it happens
        self.wait_seconds = Histogram(
            "text_recognizer_wait_seconds",
            "Time a request waited for a free worker.",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.waiting = Gauge(
            "text_recognizer_requests_waiting",
            "Requests waiting for a free worker now.",
            registry=self.registry,
        )
        self.uploading = Gauge(
            "text_recognizer_requests_uploading",
            "Requests taken in whose upload is still arriving now.",
            registry=self.registry,
        )
        self.busy = Gauge(
            "text_recognizer_workers_busy",
            "Workers reading an image now.",
            registry=self.registry,
        )


class BusyError(Exception):
    """No worker for this request: too many wait already, or it waited too long."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class ClientGoneError(Exception):
    """The client disconnected before a worker was free (while its upload arrived, or while
    it waited): its image is not read."""


class Pool:
    """The workers: Recognizers each reading one image at a time, and the line of requests
    waiting for one: first come, first served, none waiting more than ``max_wait``
    seconds. A request counts from when its upload starts (:meth:`admit`): at most
    ``queue`` more than the workers are being sent, waiting or read at once, so that slow
    uploads too are bounded. Used from the event loop only, so it needs no lock."""

    def __init__(
        self, recognizers: Sequence[Recognizer], queue: int, max_wait: float, metrics: Metrics
    ) -> None:
        self.idle = list(recognizers)
        self.size = len(self.idle)
        self.free = anyio.Semaphore(self.size)
        self.queue = queue
        self.max_wait = max_wait
        self.waiting = 0
        self.admitted = 0  # from the start of their upload until they are answered
        self.uploading = 0  # of those, whose upload is still arriving
        self.metrics = metrics
        # The threads that open uploads and read them: each request taken in holds one at
        # a time, and at most size + queue are, so none waits for a thread. Not anyio's
        # default pool (40 threads, shared with the rest of a larger app), where a 41st
        # worker's read silently queued while it was shown busy.
        self.threads = anyio.CapacityLimiter(self.size + queue)
        self.mean_seconds = 0.0  # per read, recent reads weighing most: for Retry-After
        self.reading_since: dict[int, float] = {}  # each read under way: when it started

    @property
    def busy(self) -> int:
        return self.size - len(self.idle)

    def admit(self) -> None:
        """Take a request in as its upload starts; ``BusyError`` where the workers and
        ``queue`` more are taken already (their uploads held in memory meanwhile).
        :meth:`leave` when it is answered."""
        if self.admitted < self.size + self.queue:
            self.admitted += 1
            return
        self.metrics.unread.labels(reason="queue_full").inc()
        ahead = self.admitted - self.busy  # being sent, opened or waiting: each waits its turn
        if self.busy == self.size:
            detail = f"every worker is reading and {_requests(ahead, 'waits', 'wait')} already"
        else:  # slow uploads hold the places
            detail = (
                f"{_requests(self.admitted, 'is', 'are')} being sent, waiting or read already, the "
                f"most it takes at once ({self.uploading} still being sent)"
            )
        raise BusyError(f"the service is busy: {detail}", self.retry_after(ahead))

    def leave(self) -> None:
        """A request taken in (:meth:`admit`) is answered, or its client has gone."""
        self.admitted -= 1

    async def read(self, request: Request, job: Callable[[Recognizer], T]) -> tuple[T, float]:
        """``job`` run by a free worker, and the seconds it took; ``BusyError``
        when none is free within ``max_wait``, ``ClientGoneError`` when the client left
        while it waited (its place in the line is then given up at once)."""
        start = time.perf_counter()
        self.waiting += 1
        try:
            outcome = await self._take_a_worker(request)
        finally:
            self.waiting -= 1
            self.metrics.wait_seconds.observe(time.perf_counter() - start)
        if outcome != "free":
            self.metrics.unread.labels(reason=outcome).inc()
        if outcome == "client_gone":
            raise ClientGoneError
        if outcome == "waited_too_long":
            raise BusyError(
                f"the service is busy: no worker was free within {self.max_wait:g} s",
                self.retry_after(self.waiting),
            )
        recognizer = self.idle.pop()
        self.reading_since[id(recognizer)] = time.monotonic()
        try:
            result, seconds = await anyio.to_thread.run_sync(
                _timed, job, recognizer, limiter=self.threads
            )
        finally:
            del self.reading_since[id(recognizer)]
            self.idle.append(recognizer)
            self.free.release()
        # The mean of recent reads (each weighing a tenth), the first taken whole.
        self.mean_seconds += (seconds - self.mean_seconds) * (0.1 if self.mean_seconds else 1)
        return result, seconds

    async def _take_a_worker(self, request: Request) -> str:
        """Waits for a free worker and takes it ("free"), unless the client leaves first
        ("client_gone") or ``max_wait`` passes ("waited_too_long")."""
        took = gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:  # the body is read: what comes next is the disconnect
                nonlocal gone
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                gone = True
                group.cancel_scope.cancel()

            group.start_soon(watch)
            with anyio.move_on_after(self.max_wait):
                await self.free.acquire()
                took = True
            group.cancel_scope.cancel()
        if gone:
            if took:  # both at once: the client left as its turn came
                self.free.release()
            return "client_gone"
        return "free" if took else "waited_too_long"

    def retry_after(self, ahead: int) -> int:
        """Whole seconds until ``ahead`` requests (those waiting now) and one more are
        likely read (at least 1).

        Each worker is free when its read under way ends: at the mean of recent reads, or,
        for a read that has run past it (a 30-page TIFF), after as long again as it has
        run so far; then each request ahead takes the first free worker for a mean read.
        """
        now = time.monotonic()
        free_in = [0.0] * len(self.idle)
        for started in self.reading_since.values():
            ran = now - started
            free_in.append(self.mean_seconds - ran if ran < self.mean_seconds else ran)
        done_in = 0.0
        for _ in range(ahead + 1):
            free_in.sort()
            free_in[0] += self.mean_seconds
            done_in = free_in[0]
        return max(1, math.ceil(done_in))


def _requests(count: int, verb_one: str, verb_many: str) -> str:
    """``count`` requests and the verb that agrees: "1 request waits", "2 requests wait"."""
    return f"1 request {verb_one}" if count == 1 else f"{count} requests {verb_many}"


def _timed(job: Callable[[Recognizer], T], recognizer: Recognizer) -> tuple[T, float]:
    start = time.perf_counter()
    result = job(recognizer)
    return result, time.perf_counter() - start


RECOGNIZE_PATH = "/api/recognize"  # the one route that reads: its requests take a place


@dataclass(frozen=True)
class Upload:
    """What arrived of a request's body, for its refusal to tell: a form cut short (its
    closing boundary never came) parses as one without its file."""

    size: int
    closed: bool


def form_closed(content_type: str, body: bytes) -> bool:
    """Whether ``body`` holds the closing boundary of the multipart form ``content_type``
    declares (True where it declares none: nothing to tell)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return found is None or b"--" + found.group(1).encode("latin-1") + b"--" in body


class UploadLimit:
    """Takes an upload in as it starts (:meth:`Pool.admit`; 503 with a Retry-After where
    the service holds as many requests as it takes), and refuses a request body over
    ``limit`` bytes with 413, before anything parses it.

    The body is read here (at most ``limit`` bytes, however the client sends it: with a
    Content-Length or chunked) and handed on whole; a larger one is cut off as soon as it
    passes the limit, so an endless upload costs neither memory nor disk, and many slow
    ones no more than the pool takes. One from which nothing arrives for ``stall``
    seconds is answered 408, so that its place in the pool is freed (a client whose
    connection dropped without a word is never heard to leave)."""

    def __init__(
        self, app: ASGIApp, limit: int, metrics: Metrics, pool: Pool, stall: float
    ) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.pool = pool
        self.stall = stall

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        if scope["method"] != "POST" or not scope["path"].endswith(RECOGNIZE_PATH):
            # A page, health, metrics, a wrong path or method: answered however busy.
            try:
                body = await self._body(scope, receive, send)
            except ClientGoneError:
                return
            if body is not None:
                await self._hand_on(scope, receive, send, body)
            return
        try:
            self.pool.admit()
        except BusyError as busy:
            await busy_response(busy)(scope, receive, send)
            return
        try:
            self.pool.uploading += 1
            try:
                body = await self._body(scope, receive, send, stall=self.stall)
            except ClientGoneError:  # mid-upload: its place is freed below, at once
                self.metrics.unread.labels(reason="client_gone").inc()
                return
            finally:
                self.pool.uploading -= 1
            if body is not None:
                scope.setdefault("state", {})["upload"] = Upload(
                    len(body), form_closed(Headers(scope=scope).get("content-type", ""), body)
                )
                await self._hand_on(scope, receive, send, body)
        finally:
            self.pool.leave()

    async def _body(
        self, scope: Scope, receive: Receive, send: Send, stall: float = math.inf
    ) -> bytes | None:
        """The whole body; None where it was refused (413) or nothing of it arrived for
        ``stall`` seconds (408); ``ClientGoneError`` where the client left."""
        chunks: list[bytes] = []
        size = 0
        window_start, window_bytes = time.monotonic(), 0  # the rate, one stall long at a time
        while True:
            with anyio.move_on_after(stall) as waiting:
                message = await receive()
            if waiting.cancelled_caught:
                detail = f"the upload stalled: nothing of it arrived for {stall:g} s; send it again"
                await self._stalled(scope, receive, send, detail)
                return None
            if message["type"] == "http.disconnect":
                raise ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            window_bytes += len(chunk)
            elapsed = time.monotonic() - window_start
            if elapsed >= stall:
                if window_bytes < MIN_UPLOAD_BYTES_PER_S * elapsed:
                    detail = (
                        f"the upload is too slow: {window_bytes} bytes arrived in {elapsed:.0f} s "
                        f"(at least {MIN_UPLOAD_BYTES_PER_S // 1024} KB a second is needed); "
                        "send it again"
                    )
                    await self._stalled(scope, receive, send, detail)
                    return None
                window_start, window_bytes = time.monotonic(), 0

    async def _stalled(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        """408: the upload stalled or trickles; its place in the pool is freed."""
        self.metrics.unread.labels(reason="upload_stalled").inc()
        response = JSONResponse(
            {"detail": detail}, status_code=408, headers={"Connection": "close"}
        )
        await response(scope, receive, send)

    async def _hand_on(self, scope: Scope, receive: Receive, send: Send, data: bytes) -> None:
        body: Message | None = {"type": "http.request", "body": data}

        async def replay() -> Message:
            nonlocal body
            if body is None:
                return await receive()  # after the body: wait for the disconnect
            message, body = body, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.too_large.inc()
        megabytes = self.limit / 2**20
        response = JSONResponse(
            {"detail": f"the upload is larger than {megabytes:.3g} MB; send a smaller image"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def busy_response(busy: BusyError) -> JSONResponse:
    """503, and when to try again: in its detail and its Retry-After header. The body may
    be unread: the connection is closed after it."""
    return JSONResponse(
        {"detail": busy_detail(busy)},
        status_code=503,
        headers={"Retry-After": str(busy.retry_after), "Connection": "close"},
    )


def busy_detail(busy: BusyError) -> str:
    return f"{busy.detail}; try again in {busy.retry_after} s"


def explain_form_error(error: dict[str, Any], form: FormData) -> dict[str, Any]:
    """FastAPI's account of what is wrong with a form (``error``), its message saying
    what to do where the ``image`` field is missing or holds text: ``curl -F image=x.png``,
    the @ forgotten, sends the file's name. A long input is cut short: echoed whole, it
    gave a whole upload back (an image sent as text)."""
    text = error.get("input")
    shown = text if not isinstance(text, str) or len(text) <= 40 else text[:40] + "..."
    if shown is not text:
        error = {**error, "input": shown}
    if tuple(error["loc"]) != ("body", "image"):
        return error
    if isinstance(text, str):
        if any(ord(char) < 32 and char not in "\t\r\n" for char in text[:1024]):
            message = (
                f"the field image holds data ({shown!r}) with no file name, so it was taken "
                "as text: send it as a file, its part's Content-Disposition naming a filename "
                '(filename="line.png"; filename*= alone is not one), as curl -F image=@line.png '
                "does"
            )
            return {**error, "msg": message}
        name = text if text and shown == text and text.isprintable() else "line.png"
        message = (
            f"the field image holds text ({shown!r}), not a file: send the file itself "
            f"(curl -F {shlex.quote('image=@' + name)}, with the @)"
        )
    else:
        files = sorted({name for name, value in form.multi_items() if isinstance(value, FormFile)})
        held = f" (its files: {', '.join(files)})" if files else ""
        message = f"the form has no file in the field image{held}: send the image there "
        message += "(curl -F image=@line.png)"
    return {**error, "msg": message}


class Refusal(BaseModel):
    """Why a request was not read, for the OpenAPI schema: FastAPI's default there (a 422
    whose ``detail`` is a list) is not what most refusals send, a sentence to act on."""

    detail: str | list[dict[str, Any]]


def _refused(description: str, **more: Any) -> dict[str, Any]:
    return {"description": description, "model": Refusal, **more}


#: Every answer ``POST /api/recognize`` may give, in its OpenAPI schema (as docs/serving.md
#: lists them), so that a client made from the schema expects what is sent.
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The reading: JSON (one page's reading, or ``pages``: each page's "
        "reading or its ``error``), or a PAGE XML document where format=page-xml.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/xml": {"schema": {"type": "string"}},
        },
    },
    400: _refused("The body says it is a multipart/form-data form but is not one."),
    408: _refused("The upload stalled or trickled; its place is freed."),
    413: _refused("The body is over the upload limit."),
    415: _refused("The body is no multipart/form-data form."),
    422: _refused(
        "The image cannot be read, or the form is wrong: detail says why (a list of what "
        "is wrong, each item's loc and msg, for a form FastAPI cannot take)."
    ),
    503: _refused(
        "The service is busy: try again after Retry-After seconds.",
        headers={
            "Retry-After": {
                "description": "Seconds until the requests ahead are likely read.",
                "schema": {"type": "integer"},
            }
        },
    ),
}


#: The form fields a request sends; the rest of what `recognize` takes is the server's.
FIELDS = ("image", "kind", "format")
NO_OPTION = (
    "a request sends image, kind and format, as form fields; decoding options (beam, lm, "
    "...) are the server's, set as it starts (text-recognizer serve --beam 10)"
)


def refuse_unread_fields(query: Sequence[str], form: FormData) -> None:
    """HTTPException (422) for what a request sends that would be silently ignored: URL
    parameters (``?format=page-xml``), form fields other than ``FIELDS`` (``-F beam=10``:
    the decoding is the server's), and a field sent twice, of which FastAPI keeps the
    last (two images: the first unread)."""
    if query:
        names = ", ".join(sorted(set(query)))
        if set(query) <= set(FIELDS):
            why = "send kind and format as form fields (curl -F format=page-xml)"
        else:
            why = NO_OPTION
        raise HTTPException(422, detail=f"the URL's parameters ({names}) are not read: {why}")
    unknown = sorted(set(form) - set(FIELDS))
    if unknown:
        fields = (
            f"field {unknown[0]} is" if len(unknown) == 1 else f"fields {', '.join(unknown)} are"
        )
        raise HTTPException(422, detail=f"the form's {fields} not read: {NO_OPTION}")
    for field in FIELDS:
        if (count := len(form.getlist(field))) > 1:
            raise HTTPException(
                422,
                detail=f"the form holds {count} values in the field {field}, and one request "
                "reads one image: send each in a request of its own (a multi-page TIFF or "
                "PDF is read page by page)",
            )


def create_app(
    recognizers: Recognizer | Sequence[Recognizer],
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    queue: int = QUEUE,
    max_wait: float = MAX_WAIT,
    max_pages: int = MAX_PAGES,
    max_pixels: int | None = None,
    upload_timeout: float | None = None,
) -> FastAPI:
    """The service around ``recognizers`` (alike: one reads each image, whichever is
    free); ``uvicorn.run(create_app(...))`` serves it. At most ``queue`` requests wait for
    a free one, counted from when their upload starts, none longer than ``max_wait``
    seconds: the rest get 503 at once. An upload from which nothing arrives for
    ``upload_timeout`` seconds (None: ``max_wait``) gets 408. A request's file may hold
    ``max_pages`` pages, of ``max_pixels`` pixels together (None: ``MAX_DOCUMENT_PIXELS``,
    or one image's most where that is more), each page at most the recognizers'
    ``max_image_pixels`` (``Recognizer(max_image_pixels=...)``)."""
    if isinstance(recognizers, Recognizer):
        recognizers = [recognizers]
    if not recognizers:
        raise ValueError("create_app needs at least one Recognizer")
    if queue < 0 or not max_wait > 0:
        raise ValueError(f"queue must be 0 or more and max_wait over 0; got {queue}, {max_wait}")
    if upload_timeout is None:
        upload_timeout = max_wait
    if not upload_timeout > 0:
        raise ValueError(f"upload_timeout must be over 0; got {upload_timeout}")
    image_pixels = recognizers[0].max_image_pixels
    if any(each.max_image_pixels != image_pixels for each in recognizers):
        limits = sorted({each.max_image_pixels for each in recognizers})
        raise ValueError(
            f"the recognizers read images of different most pixels ({limits}): a request "
            "would be read or refused by whichever worker was free; give them one "
            "max_image_pixels"
        )
    if max_pixels is None:
        max_pixels = max(MAX_DOCUMENT_PIXELS, image_pixels)
    one_image = min(image_pixels, max_pixels)  # the most an image of one page may hold
    app = FastAPI(
        title="text-recognizer",
        version=__version__,
        summary="Reads handwritten characters, lines and pages.",
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; the schema
        # (/openapi.json) is served from here.
        docs_url=None,
        redoc_url=None,
    )
    metrics = Metrics()
    pool = Pool(recognizers, queue, max_wait, metrics)
    app.add_middleware(
        UploadLimit, limit=max_upload_bytes, metrics=metrics, pool=pool, stall=upload_timeout
    )
    metrics.waiting.set_function(lambda: pool.waiting)
    metrics.uploading.set_function(lambda: pool.uploading)
    metrics.busy.set_function(lambda: pool.busy)
    kinds = recognizers[0].kinds
    page = PAGE.read_text(encoding="utf-8")

    def open_pages(data: bytes, format: Format) -> Pages:
        """The upload's pages, counted and bounded before any is decoded or a worker taken."""
        pages = Pages(
            data, max_pages=max_pages, max_pixels=max_pixels, max_image_pixels=image_pixels
        )
        if format == "page-xml" and len(pages) > 1:
            count = len(pages)
            pages.close()
            raise ImageError(
                f"the file holds {count} pages, and a PAGE XML document describes "
                "one: ask for format=json, or send each page as an image of its own"
            )
        return pages

    @app.exception_handler(RequestValidationError)
    async def form_refused(request: Request, error: RequestValidationError) -> JSONResponse:
        """422 with FastAPI's account of a form it cannot take, said so as to be acted on;
        a body that is no multipart form (an image sent as the body itself, JSON) gets
        415: its 'Field required' read as if no image had been sent."""
        sent = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if sent != "multipart/form-data":
            detail = (
                f"the body is {sent or 'of no declared type'}, not a multipart/form-data "
                "form: send the image as the form's file field image (curl -F image=@line.png)"
            )
            return JSONResponse({"detail": detail}, status_code=415)
        upload = getattr(request.state, "upload", None)
        if isinstance(upload, Upload) and not upload.closed:
            detail = (
                f"the form is cut short: {upload.size} bytes arrived, and its closing "
                "boundary never came; send it whole (curl -F image=@line.png)"
            )
            return JSONResponse({"detail": detail}, status_code=400)
        form = error.body if isinstance(error.body, FormData) else FormData()
        errors = [explain_form_error(dict(each), form) for each in error.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    def answered(request: Request) -> str:
        """Each path the service answers, and how: "GET /, POST /api/recognize, ..."."""
        root = request.scope.get("root_path", "")
        listed = []
        for route in app.routes:
            methods = sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"})
            listed += [f"{method} {root}{getattr(route, 'path', '')}" for method in methods]
        return ", ".join(listed)

    def allowed_at(request: Request) -> str:
        """The methods every route at the request's path takes: Starlette's Allow header
        names the first route's alone (POST /api/health was told only HEAD)."""
        return ", ".join(
            sorted(
                method
                for route in app.routes
                if route.matches(request.scope)[0] != Match.NONE
                for method in getattr(route, "methods", None) or ()
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def not_answered(request: Request, error: StarletteHTTPException) -> Response:
        """A mistyped path, or the API opened in a browser (GET /api/recognize), got
        "Not Found" or "Method Not Allowed" alone, and a broken form "Invalid multipart
        data.": they say what is answered, or how to send the image, instead."""
        path = request.url.path
        if error.status_code == 404 and error.detail == "Not Found":
            detail = f"no such path: {path}; the service answers {answered(request)}"
            return JSONResponse({"detail": detail}, status_code=404)
        if error.status_code == 405 and error.detail == "Method Not Allowed":
            allowed = allowed_at(request)
            detail = f"{path} does not answer {request.method}, only {allowed}"
            if path.endswith(RECOGNIZE_PATH):
                detail += f" (send an image as a form: curl -F image=@line.png {request.url})"
            return JSONResponse({"detail": detail}, status_code=405, headers={"Allow": allowed})
        if error.status_code == 400 and path.endswith(RECOGNIZE_PATH):  # the form's parser's
            detail = (
                f"the body is no well-formed multipart/form-data form "
                f"({str(error.detail).rstrip('.')}): send the image as the form's file field "
                "image (curl -F image=@line.png)"
            )
            return JSONResponse({"detail": detail}, status_code=400)
        return await http_exception_handler(request, error)

    # HEAD beside each GET: uptime monitors and load balancers probe with it (FastAPI,
    # unlike Starlette's own routes, does not add it).
    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    async def index() -> str:  # async: answered by the event loop, however busy the workers
        return page

    @app.get("/api/health")
    @app.head("/api/health", include_in_schema=False)  # one operation in the schema
    async def health() -> dict[str, Any]:
        """Whether the service is up, which kinds of image its models read, what it takes
        (``max_upload_bytes`` a request; ``max_image_pixels`` an image or page, which
        the page shrinks a photo to), and how busy it is: workers reading now (``busy``)
        of ``workers``, requests ``waiting`` for one, and requests whose upload is still
        arriving (``uploading``); at most ``queue`` more than the workers are taken in at
        once."""
        return {
            "status": "ok",
            "kinds": kinds,
            "max_upload_bytes": max_upload_bytes,
            "max_image_pixels": one_image,
            "workers": pool.size,
            "busy": pool.busy,
            "queue": queue,
            "waiting": pool.waiting,
            "uploading": pool.uploading,
        }

    @app.post(RECOGNIZE_PATH, response_model=None, responses=ANSWERS)
    async def recognize(
        request: Request,
        image: UploadFile = File(  # noqa: B008
            description="The image: PNG, JPEG, TIFF or PDF (every page of a multi-page "
            "one; PDF with the pdf extra), BMP, ..."
        ),
        kind: ReadKind = Form("auto", description="What the image holds; auto tells."),  # noqa: B008
        format: Format = Form(  # noqa: B008
            "json", description="json, or page-xml: the reading as a PAGE XML document."
        ),
    ) -> dict[str, Any] | Response:
        """Read one image: its text, confidence and kind (and a page's lines with where
        they are), as JSON or PAGE XML; a file of several pages (a multi-page TIFF) as
        ``{"pages": [...]}``, each page's reading with its ``page`` number, or its
        ``error``. A 422 says why an image cannot be read; a 503 that the service is too
        busy now, and its Retry-After header when to try again."""
        # Parsed already (FastAPI took image, kind and format from it): the same form.
        refuse_unread_fields(list(request.query_params), await request.form())
        data = await image.read()
        try:
            # In a thread: a PDF is opened under PDFium's lock, which a worker drawing a
            # page holds; the event loop (health, metrics, other requests) must not wait.
            pages = await anyio.to_thread.run_sync(open_pages, data, format, limiter=pool.threads)
            with pages:
                outcomes, seconds = await pool.read(
                    request, lambda recognizer: list(recognizer.recognize_pages(pages, kind))
                )
        except BusyError as busy:
            headers = {"Retry-After": str(busy.retry_after)}
            raise HTTPException(503, detail=busy_detail(busy), headers=headers) from None
        except ClientGoneError:
            return Response(status_code=499)  # nginx's "client closed request"; unread
        except TextRecognizerError as error:
            metrics.images.labels(kind=kind, outcome="error").inc()
            raise HTTPException(422, detail=str(error)) from None
        metrics.seconds.observe(seconds)
        pages_read: list[dict[str, Any]] = []
        for number, outcome in enumerate(outcomes, 1):
            if isinstance(outcome, Result):
                metrics.images.labels(kind=outcome.kind, outcome="ok").inc()
                pages_read.append(outcome.to_dict())
            else:
                metrics.images.labels(kind=kind, outcome="error").inc()
                pages_read.append({"page": number, "error": str(outcome)})
        milliseconds = round(seconds * 1000, 1)
        if len(outcomes) > 1:
            return {"pages": pages_read, "milliseconds": milliseconds}
        (result,) = outcomes
        if not isinstance(result, Result):
            raise HTTPException(422, detail=str(result))
        if format == "page-xml":
            name = Path(image.filename or "image").name
            return Response(page_xml(result, name), media_type="application/xml")
        return {**pages_read[0], "milliseconds": milliseconds}

    @app.api_route("/metrics", methods=["GET", "HEAD"], include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
