"""The FastAPI app: ``GET /`` the page, ``POST /api/recognize`` an image in, text out.

One :class:`~text_recognizer.recognizer.Recognizer` serves every request, one image at a
time (a lock): ONNX Runtime already spreads one image's network run over every core, and
the beam-search decoder is not documented as safe to share between threads. Requests wait
in line rather than slow each other down.

Uploads are capped in bytes before they are parsed (``UploadLimit``), and in pages and
pixels (all pages' together, and each page's: ``preprocessing.MAX_PIXELS``) before any
page is decoded: a multi-page TIFF of a few kB may hold thousands of pages.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from text_recognizer import __version__
from text_recognizer.errors import ImageError, TextRecognizerError
from text_recognizer.page_xml import page_xml
from text_recognizer.preprocessing import Pages
from text_recognizer.recognizer import Recognizer, Result

#: Default cap on one request's body: a photographed page is 2-8 MB as JPEG.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Default caps on one request's pages (a multi-page TIFF) and their pixels together: 51
#: A4 pages scanned at 200 dpi (3.9 M pixels each), or 23 at 300 dpi (8.7 M).
MAX_PAGES = 50
MAX_DOCUMENT_PIXELS = 200_000_000

PAGE = Path(__file__).with_name("static") / "index.html"

ReadKind = Literal["auto", "char", "line", "paragraph"]
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


class UploadLimit:
    """Refuses a request body over ``limit`` bytes with 413, before anything parses it.

    The body is read here (at most ``limit`` bytes, however the client sends it: with a
    Content-Length or chunked) and handed on whole; a larger one is cut off as soon as it
    passes the limit, so an endless upload costs neither memory nor disk."""

    def __init__(self, app: ASGIApp, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks)}

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


def create_app(
    recognizer: Recognizer,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pages: int = MAX_PAGES,
    max_pixels: int = MAX_DOCUMENT_PIXELS,
) -> FastAPI:
    """The service around ``recognizer``; ``uvicorn.run(create_app(...))`` serves it.
    A request's file may hold ``max_pages`` pages, of ``max_pixels`` pixels together."""
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
    app.add_middleware(UploadLimit, limit=max_upload_bytes, metrics=metrics)
    lock = threading.Lock()
    page = PAGE.read_text(encoding="utf-8")

    def read(
        data: bytes, kind: ReadKind, format: Format
    ) -> tuple[list[Result | ImageError], float]:
        """Every page's reading (or why it could not be read), and the time they took."""
        with Pages(data, max_pages=max_pages, max_pixels=max_pixels) as pages:
            if format == "page-xml" and len(pages) > 1:
                raise ImageError(
                    f"the file holds {len(pages)} pages, and a PAGE XML document describes "
                    "one: ask for format=json, or send each page as an image of its own"
                )
            with lock:
                start = time.perf_counter()
                outcomes = list(recognizer.recognize_pages(pages, kind))
                seconds = time.perf_counter() - start
        metrics.seconds.observe(seconds)
        return outcomes, seconds

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Whether the service is up, and which kinds of image its models read."""
        return {
            "status": "ok",
            "kinds": recognizer.kinds,
            "max_upload_bytes": max_upload_bytes,
        }

    @app.post("/api/recognize", response_model=None)
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
        ``error``. A 422 says why an image cannot be read."""
        if request.query_params:  # ?format=page-xml would otherwise be silently ignored
            raise HTTPException(
                422,
                detail=f"the URL's parameters ({', '.join(sorted(request.query_params))}) are "
                "not read: send kind and format as form fields (curl -F format=page-xml)",
            )
        data = await image.read()
        try:
            outcomes, seconds = await anyio.to_thread.run_sync(read, data, kind, format)
        except TextRecognizerError as error:
            metrics.images.labels(kind=kind, outcome="error").inc()
            raise HTTPException(422, detail=str(error)) from None
        pages: list[dict[str, Any]] = []
        for number, outcome in enumerate(outcomes, 1):
            if isinstance(outcome, Result):
                metrics.images.labels(kind=outcome.kind, outcome="ok").inc()
                pages.append(outcome.to_dict())
            else:
                metrics.images.labels(kind=kind, outcome="error").inc()
                pages.append({"page": number, "error": str(outcome)})
        milliseconds = round(seconds * 1000, 1)
        if len(outcomes) > 1:
            return {"pages": pages, "milliseconds": milliseconds}
        (result,) = outcomes
        if not isinstance(result, Result):
            raise HTTPException(422, detail=str(result))
        if format == "page-xml":
            name = Path(image.filename or "image").name
            return Response(page_xml(result, name), media_type="application/xml")
        return {**pages[0], "milliseconds": milliseconds}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
