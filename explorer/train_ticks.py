"""The Train tab's charts follow a run without a Gradio event every second: the page asks this route first.

    GET /de-train-version  -> 200, a short text that changes whenever a training job of this app changes

The page's script (explorer/tabs/train_ticks.js) asks it once a second while the Train tab is in view,
and presses the tab's hidden refresh button (a Gradio event that redraws what changed for that page)
only when the text has moved, when the tab comes into view, and every ten seconds whatever it says.
A Gradio timer ticking every second cost a 2-core laptop's page about 80 ms of main thread a tick (and
the server a Gradio call), with or without a run: an idle page on the Train tab took four times the
renderer CPU of one on another tab. Behind the app's login (launch.py --auth) the route asks for the
same login cookie as the app.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .feed import logged_in
from .jobs import version_key

PATH = "/de-train-version"


async def serve(request: Request) -> Response:
    if not logged_in(request):
        return Response("Not logged in.", status_code=401)
    return Response(version_key(), media_type="text/plain", headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    """The route, for `launch(app_kwargs={"routes": routes()})`."""
    return [Route(PATH, serve, methods=["GET"])]
