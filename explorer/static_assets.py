"""Gradio's own page code (its build's /assets/...), compressed once and kept by the browser.

Why: a fresh page of this app asks for 115-122 of Gradio's build files (0.7 MB compressed for a
student's quiz page; 2.1 MB where the page draws a chart, plotly alone 4.6 MB before compression).
Gradio's server reads each from disk and compresses it anew for every request (Brotli in its
middleware), and sends no Cache-Control, so every student who opens the app cost the server 0.2-0.35 s
of CPU for files that never change, and a class joining at once from a QR code held the lecturer's
laptop busy for that much longer (benchmarks/class_join.py). Here the same files are served by a route
that comes before Gradio's own:

    GET /assets/{path}  -> 200 the file, Brotli (or gzip) compressed once per process and kept in
                           memory (bounded, least recently used dropped); a name with a content hash
                           (`Index-Akn07EZk2.js`) is cached by the browser for a year, as immutable;
                           others must be revalidated (ETag, 304)
                        -> 404 a path outside the build folder, no such file, or one that cannot be read
                        -> a Range request gets the plain file (Starlette's FileResponse)

The files are Gradio's own, unchanged: the route only changes how often they are read, compressed
and sent. They are public code, served without the app's login as Gradio serves them.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import brotli  # Gradio's own dependency (its compression middleware)
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

PATH = "/assets/{path:path}"
# Gradio's middleware compresses these kinds (woff2, images are compressed already)
COMPRESSIBLE = {".html", ".htm", ".js", ".mjs", ".css", ".json", ".md", ".txt", ".csv", ".tsv", ".xml", ".svg",
                ".map"}
BROTLI_QUALITY = 5  # once per file: about Gradio's own cost (its quality 4) for a body 8% smaller
CACHE_BYTES = 48 * 2**20  # every file of Gradio's build, compressed, is about 6 MB
# a bundler's content hash before the extension: the file at that address never changes
HASHED = re.compile(r"-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Asset:
    plain: bytes
    br: bytes | None  # None: not a compressible kind
    gz: bytes | None
    etag: str
    media_type: str
    cache_control: str

    @property
    def size(self) -> int:
        return len(self.plain) + len(self.br or b"") + len(self.gz or b"")


class AssetCache:
    """Files below `root`, read and compressed once, least recently used dropped over `max_bytes`."""

    def __init__(self, root: str | Path, max_bytes: int = CACHE_BYTES):
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        self._items: OrderedDict[Path, Asset] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._loading: dict[Path, threading.Lock] = {}  # one load per file, however many ask at once
        self.loads = 0  # files read and compressed (for tests and benchmarks)

    def file(self, path: str) -> Path | None:
        """The file `path` names below the root, or None (outside it, hidden, missing, not a file)."""
        if not path or "\x00" in path or "\\" in path:
            return None
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root) or target == self.root or not target.is_file():
            return None
        return target

    def get(self, target: Path) -> Asset:
        with self._lock:
            if target in self._items:
                self._items.move_to_end(target)
                return self._items[target]
            loading = self._loading.setdefault(target, threading.Lock())
        with loading:
            with self._lock:
                if target in self._items:
                    return self._items[target]
            try:
                asset = self._load(target)  # OSError (gone or unreadable since `file`): the caller says 404
            finally:
                with self._lock:
                    self._loading.pop(target, None)
            with self._lock:
                self._items[target] = asset
                self._bytes += asset.size
                while self._bytes > self.max_bytes and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.size
                self.loads += 1
            return asset

    @staticmethod
    def _load(target: Path) -> Asset:
        plain = target.read_bytes()
        squeeze = target.suffix.lower() in COMPRESSIBLE and len(plain) >= 400
        br = brotli.compress(plain, quality=BROTLI_QUALITY, mode=brotli.MODE_TEXT) if squeeze else None
        gz = gzip.compress(plain, compresslevel=6, mtime=0) if squeeze else None
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type in ("application/javascript", "application/json"):
            media_type += "; charset=utf-8"
        return Asset(plain, br, gz, '"' + hashlib.sha1(plain).hexdigest() + '"', media_type,
                     IMMUTABLE if HASHED.search(target.name) else REVALIDATE)


def _accepts(request: Request, coding: str) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == coding:
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def serve_asset(cache: AssetCache, request: Request) -> Response:
    """GET /assets/{path}: see the module's docstring."""
    target = cache.file(request.path_params.get("path", ""))
    if target is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    if "range" in request.headers:
        return FileResponse(target)
    try:
        asset = cache.get(target)
    except OSError:  # removed or made unreadable since it was found (an upgrade of Gradio while serving)
        return Response("Not found", status_code=404, media_type="text/plain")
    headers = {"ETag": asset.etag, "Cache-Control": asset.cache_control}
    if asset.br is not None:
        headers["Vary"] = "Accept-Encoding"
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.plain
    if asset.br is not None and _accepts(request, "br"):
        body, headers["Content-Encoding"] = asset.br, "br"
    elif asset.gz is not None and _accepts(request, "gzip"):
        body, headers["Content-Encoding"] = asset.gz, "gzip"
    return Response(body, headers=headers, media_type=asset.media_type)


def routes(root: str | Path | None = None) -> list[Route]:
    """The route, for `launch(app_kwargs={"routes": ...})`: it comes before Gradio's own /assets route.

    root: the folder served; Gradio's build folder by default.
    """
    if root is None:
        from gradio.route_utils import BUILD_PATH_LIB
        root = BUILD_PATH_LIB
    cache = AssetCache(root)

    def endpoint(request: Request) -> Response:  # a plain function: Starlette runs it in a worker thread
        return serve_asset(cache, request)

    route = Route(PATH, endpoint, methods=["GET"])
    route.cache = cache  # type: ignore[attr-defined]  (tests and the benchmark read its counters)
    return [route]
