"""Live frames for the page's player, served outside Gradio's event messages.

Why: for every message Gradio streams to the page, its front end refreshes the loading status of
every output of every event that has run on the page (thousands of property copies on this app).
Streamed as Gradio outputs, a playing Reverse run kept the browser's main thread about 100% busy
on 2 cores and painted 2-3 frames a second (benchmarks/reverse_2d_playback.py). Here a playing run
publishes its newest frame (JPEG bytes and a one-line caption) into a `Feed`, and the page's player
(`reverse_player.js`) asks for the next frame with one HTTP request at a time:

    GET /de-feed/{token}?after=N   -> 200 the newest frame if one newer than N is published
                                       (waits up to WAIT_S for one, then 204: ask again)
                                    -> 410 the run has ended (or the token is unknown)
    GET /de-feed/{token}?after=0&play=1
                                    -> on an armed feed, first draws the frame Play will show
                                       first (see below), then answers as above
    GET /de-feed/{token}?peek=1     -> 200 that frame as it would be drawn now (nothing changes;
                                       the page keeps it ready for the click), else 204
    GET /de-feed/{token}?frame=K    -> 200 frame K of the session's run, drawn as a picture (nothing
                                       changes), where the feed has a `viewer`; else 204

Armed feeds: Play's first view goes through Gradio's queue, a round trip that takes 100-400 ms on a
busy 2-core machine. A session at rest that can replay its run (every frame already recorded) holds
an armed feed. The page fetches the frame Play would show first ahead of time (`peek=1`) and shows it
on the click; the click also asks the feed with `play=1`, in parallel with Gradio's event, and the
feed's `starter` moves the session to that frame and sends it (the page shows it if it differs from
the one it had). Play's handler then takes the feed over (`disarm` says which frame the page was
sent) and goes on from that frame, so the page follows one feed from the click to the end of the run.

Scrubbing: Gradio's view of a scrubbed frame of a 2-D run is the interactive figure, about 0.3 s of
the browser's main thread a position (its message, then the plot drawn anew). While the frame slider is
dragged, the page asks the session's armed feed for each position's picture instead (one request at a
time, the newest position) and shows it over the figure until Gradio's view of the last position lands.

Latest wins: a browser that falls behind gets the newest frame, the ones in between are never
sent, and the run draws a frame only when the browser has taken the previous one (`hungry`), so
no frame is drawn for nobody and nothing piles up. Tokens are random and live only while a run
plays; behind the app's login (launch.py --auth) the route asks for the same login cookie.
"""
from __future__ import annotations

import asyncio
import io
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import quote

import numpy as np
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PATH = "/de-feed/{token}"
WAIT_S = 2.0          # a request waits this long for a new frame before the player asks again
POLL_S = 0.01         # how often a waiting request looks (an asyncio sleep: it holds no thread)
MAX_OPEN = 256        # feeds open at once (one per playing run and one armed per session at rest)
JPEG_QUALITY = 85


def jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """An (H, W, 3) uint8 array as JPEG bytes."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(out, format="JPEG", quality=quality)
    return out.getvalue()


class Feed:
    """The newest frame of one playing run. `publish` from the run's thread, `take` from the route."""

    def __init__(self, starter: Callable[[bool], tuple[bytes, str, int, int] | None] | None = None,
                 viewer: Callable[[int], tuple[bytes, str, int, int] | None] | None = None):
        self.token = secrets.token_urlsafe(18)
        self._lock = threading.Lock()
        self.seq = 0              # frames published so far
        self.taken = 0            # the seq of the newest frame a browser has taken
        self._frame: tuple[bytes, str, int, int] | None = None  # (jpeg, caption, frame index, frames recorded)
        self.closed = False
        # armed: draws Play's first frame when the page asks with play=1 (None: nothing, or too
        # late); `started` is that frame's index once it was published
        self._starter = starter
        self.started: int | None = None
        # viewer(k): frame k of the session's run as (jpeg, caption, k, frames), drawn without changing
        # anything (None: no such frame, or the session is busy); the page's scrub previews
        self._viewer = viewer

    def view(self, k: int) -> tuple[bytes, str, int, int] | None:
        """Frame k as the viewer draws it (None: no viewer, closed, or the viewer declined)."""
        viewer = None if self.closed else self._viewer
        return None if viewer is None else viewer(k)

    def start(self) -> bool:
        """Draw and publish Play's first frame if the feed is armed and nothing was published yet.
        The starter may decline with None (the run must compute first, or plays): the feed stays
        armed for a later click. True when a frame was published."""
        with self._lock:
            if self._starter is None or self.closed or self.seq:
                return False
            got = self._starter(True)
            if got is None:
                return False
            self._starter = None
            self.seq += 1
            self._frame = (got[0], got[1], int(got[2]), int(got[3]))
            self.started = int(got[2])
            return True

    def peek(self) -> tuple[bytes, str, int, int] | None:
        """The frame `start` would send now, drawn without changing anything (None: none, or not armed)."""
        with self._lock:
            starter = None if self.closed or self.seq else self._starter
        return None if starter is None else starter(False)

    def disarm(self) -> int | None:
        """Play's handler takes the feed over: no first frame is drawn after this. Returns the index
        of the frame `start` sent the page (None: none was)."""
        with self._lock:
            self._starter = None
            return self.started

    @property
    def armed(self) -> bool:
        """True while the feed may still draw Play's first frame (no play has taken it over)."""
        return self._starter is not None

    @property
    def hungry(self) -> bool:
        """True when the browser has taken every frame published (or none was yet): time to draw one."""
        return self.taken >= self.seq

    def publish(self, picture: bytes, caption: str, index: int, frames: int) -> None:
        with self._lock:
            self.seq += 1
            self._frame = (picture, caption, int(index), int(frames))

    def take(self, after: int) -> tuple[int, bytes, str, int, int] | None:
        """(seq, jpeg, caption, index, frames) of the newest frame if it is newer than `after`, else None."""
        with self._lock:
            if self.seq <= after or self._frame is None:
                return None
            self.taken = self.seq
            return (self.seq, *self._frame)

    def close(self) -> None:
        with self._lock:
            self.closed, self._frame = True, None


class Feeds:
    """The open feeds by token; a closed feed is dropped at once (its token then answers 410)."""

    def __init__(self, max_open: int = MAX_OPEN):
        self.max_open = max_open
        self._open: OrderedDict[str, Feed] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, starter: Callable[[bool], tuple[bytes, str, int, int] | None] | None = None,
             viewer: Callable[[int], tuple[bytes, str, int, int] | None] | None = None) -> Feed:
        """A new feed (armed with `starter`, with `viewer` for scrubs, see `Feed`); the oldest open one
        closes when too many are."""
        feed = Feed(starter, viewer)
        with self._lock:
            while len(self._open) >= self.max_open:
                # the oldest armed feed (a session at rest, maybe gone) goes first, else the oldest of
                # all (a run that never closed its feed)
                token = next((t for t, f in self._open.items() if f.armed), next(iter(self._open)))
                self._open.pop(token).close()
            self._open[feed.token] = feed
        return feed

    def close(self, feed: Feed) -> None:
        feed.close()
        with self._lock:
            self._open.pop(feed.token, None)

    def get(self, token: str) -> Feed | None:
        with self._lock:
            return self._open.get(token)

    def __len__(self) -> int:
        return len(self._open)


FEEDS = Feeds()


def logged_in(request: Request) -> bool:
    """The app's own login, as Gradio checks it for its routes (no login configured: everyone)."""
    app = request.app
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    if getattr(app, "auth_dependency", None) is not None:
        return app.auth_dependency(request) is not None
    cookie = (request.cookies.get(f"access-token-{app.cookie_id}")
              or request.cookies.get(f"access-token-unsecure-{app.cookie_id}"))
    return app.tokens.get(cookie) is not None


def _frame(picture: bytes, seq: int, caption: str, index: int, frames: int) -> Response:
    return Response(picture, media_type="image/jpeg", headers={
        "Cache-Control": "no-store", "X-Seq": str(seq), "X-Frame": str(index), "X-Frames": str(frames),
        "X-Caption": quote(caption)})


async def serve(request: Request) -> Response:
    """GET /de-feed/{token}?after=N: see the module's docstring."""
    if not logged_in(request):
        return Response("Not logged in.", status_code=401)
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        return Response("after must be a whole number (the seq of the last frame the player has).", status_code=400)
    feed = FEEDS.get(request.path_params["token"])
    if "frame" in request.query_params:
        try:
            k = int(request.query_params["frame"])
        except ValueError:
            return Response("frame must be a whole number (a frame of the run, from 0).", status_code=400)
        if feed is None:
            return Response(status_code=410, headers={"Cache-Control": "no-store"})
        got = await asyncio.to_thread(feed.view, k)
        if got is None:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        picture, caption, index, frames = got
        return _frame(picture, 0, caption, index, frames)
    if request.query_params.get("peek") == "1":
        got = None if feed is None else await asyncio.to_thread(feed.peek)
        if got is None:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        picture, caption, index, frames = got
        return _frame(picture, 0, caption, index, frames)
    if feed is not None and request.query_params.get("play") == "1" and after == 0:
        await asyncio.to_thread(feed.start)  # an armed feed draws Play's first frame now
    deadline = time.monotonic() + WAIT_S
    while feed is not None and not feed.closed:
        got = feed.take(after)
        if got is not None:
            seq, picture, caption, index, frames = got
            return _frame(picture, seq, caption, index, frames)
        if time.monotonic() >= deadline:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        await asyncio.sleep(POLL_S)
    return Response(status_code=410, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    """The feed's route, for `launch(app_kwargs={"routes": routes()})`."""
    return [Route(PATH, serve, methods=["GET"])]


def marker(feed: Feed | None) -> str:
    """The HTML that tells the page's player which feed to follow ('' when none plays)."""
    return "" if feed is None else f'<span data-feed="{feed.token}"></span>'


def figure_later() -> str:
    """The HTML (in the feed's place: no run plays) that tells the page's player a 2-D or signal run ended
    on its last frame's picture and its interactive figure waits to be asked for; each one new, so the
    page asks once for each."""
    return f'<span data-figure-later="{secrets.token_urlsafe(6)}"></span>'


def armed_marker(feed: Feed | None) -> str:
    """The HTML that tells the page's player which armed feed its next Play click may ask ('' when none)."""
    return "" if feed is None else f'<span data-armed="{feed.token}"></span>'
