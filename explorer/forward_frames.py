"""The Forward slider's x_t pictures, served outside Gradio's events: one GET per move, cached.

Why: a move of the slider through a Gradio event costs the server about 12 ms of CPU (quiet
2-core CPU), of which the picture itself (q_sample and a JPEG) is under 2 ms; the rest is Gradio's
event and file handling. With a class of 20 dragging at once, the server's one Python core
saturated and each move waited for the other 19 (benchmarks/class_load.py). Here the page asks for
the picture with a plain GET whose address names everything it depends on:

    GET de-forward/{input}?schedule=linear&T=1000&seed=0&t=250
        -> 200 the JPEG of x_t, with the numbers of x_t = sqrt(abar) x0 + sqrt(1 - abar) eps as
           HTML in the X-Numbers header and the histogram's new values as JSON in X-Histogram
           (both percent-encoded)
        -> 400 a setting is out of range (the message says what is allowed)
        -> 404 the input is no longer held here: the page falls back to the Gradio event

`{input}` names the input by its content (and this server's run), so every student on the same
photo shares one key: a picture drawn for one is a cache hit for the others, and the browser keeps
each answer too (the address never changes meaning), so dragging back over a stretch already seen
asks the server nothing. Only images go this way; 2-D points and signals are figures and keep the
Gradio event. Bounded: MAX_INPUTS inputs and CACHE_BYTES of pictures, least recently used dropped.
Behind the app's login (launch.py --auth) the route asks for the same login cookie.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .feed import logged_in

PATH = "/de-forward/{key}"
MAX_INPUTS = 64                 # inputs held (photos, dataset samples, uploads); the built-in first one is pinned
CACHE_BYTES = 48 * 2**20        # pictures kept, about 1,000 of a 256 x 256 photo
RUN = secrets.token_hex(4)      # this server's run: a restart never answers from a browser's older copy

# draw(inp, schedule, T, t, seed) -> (JPEG bytes, {"numbers": HTML, "histogram": JSON}); raises ValueError
# for bad settings
Draw = Callable[..., tuple[bytes, dict[str, str]]]


def input_key(inp) -> str:
    """The key of an input: its kind and content, and this server's run."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{inp.kind}{tuple(inp.x0.shape)}".encode())
    digest.update(inp.x0.detach().cpu().contiguous().numpy().tobytes())
    return RUN + digest.hexdigest()


class Frames:
    """The inputs the page may ask pictures of, and the pictures drawn (both bounded, LRU)."""

    def __init__(self, max_inputs: int = MAX_INPUTS, cache_bytes: int = CACHE_BYTES):
        self.max_inputs, self.cache_bytes = max_inputs, cache_bytes
        self._inputs: OrderedDict[str, object] = OrderedDict()
        self._pinned: dict[str, object] = {}
        self._pictures: OrderedDict[tuple, tuple[bytes, dict[str, str]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def register(self, inp, pin: bool = False) -> str:
        key = input_key(inp)
        with self._lock:
            if pin:
                self._pinned[key] = inp
            elif key not in self._pinned:
                self._inputs[key] = inp
                self._inputs.move_to_end(key)
                while len(self._inputs) > self.max_inputs:
                    self._inputs.popitem(last=False)
        return key

    def input(self, key: str):
        with self._lock:
            if key in self._pinned:
                return self._pinned[key]
            inp = self._inputs.get(key)
            if inp is not None:
                self._inputs.move_to_end(key)
            return inp

    def cached(self, key: tuple) -> tuple[bytes, dict[str, str]] | None:
        with self._lock:
            got = self._pictures.get(key)
            if got is not None:
                self._pictures.move_to_end(key)
            return got

    def keep(self, key: tuple, picture: bytes, extras: dict[str, str]) -> None:
        with self._lock:
            if key in self._pictures:
                return
            self._pictures[key] = (picture, extras)
            self._bytes += _size(picture, extras)
            while self._bytes > self.cache_bytes and self._pictures:
                _, old = self._pictures.popitem(last=False)
                self._bytes -= _size(*old)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._pictures)


FRAMES = Frames()


def _size(picture: bytes, extras: dict[str, str]) -> int:
    return len(picture) + sum(len(v) for v in extras.values())


def source(inp, schedule: str, T, seed, pin: bool = False) -> str:
    """The address of x_t's pictures for these settings, t left to the page ('' unless an image)."""
    if getattr(inp, "kind", None) != "image":
        return ""
    key = FRAMES.register(inp, pin=pin)
    return f"de-forward/{key}?" + urlencode({"schedule": schedule, "T": T, "seed": seed})


def marker(inp, schedule: str, T, seed, pin: bool = False) -> str:
    """The HTML that tells the page where the slider's pictures are ('' for points and signals)."""
    url = source(inp, schedule, T, seed, pin)
    return f'<span data-frames="{html.escape(url)}"></span>' if url else ""


def _answer(picture: bytes, extras: dict[str, str]) -> Response:
    return Response(picture, media_type="image/jpeg", headers={
        # the address names everything the picture depends on: the browser may keep it
        "Cache-Control": "private, max-age=86400, immutable",
        **{f"X-{name.capitalize()}": quote(value) for name, value in extras.items()}})


def routes(draw: Draw, frames: Frames = FRAMES) -> list[Route]:
    """The frame route, for `launch(app_kwargs={"routes": ...})`; `draw` makes a picture on a miss."""

    async def serve(request: Request) -> Response:
        if not logged_in(request):
            return Response("Not logged in.", status_code=401)
        key = request.path_params["key"]
        q = request.query_params
        settings = (q.get("schedule", ""), q.get("T", ""), q.get("t", ""), q.get("seed", ""))
        got = frames.cached((key, *settings))
        if got is None:
            inp = frames.input(key)
            if inp is None:
                return Response("This input is no longer held here; the page asks through its event instead.",
                                status_code=404, headers={"Cache-Control": "no-store"})
            try:
                got = await asyncio.to_thread(draw, inp, *settings)
            except ValueError as e:
                return Response(str(e), status_code=400, headers={"Cache-Control": "no-store"})
            frames.keep((key, *settings), *got)
        return _answer(*got)

    return [Route(PATH, serve, methods=["GET"])]
