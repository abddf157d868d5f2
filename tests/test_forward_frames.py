"""The Forward slider's frame route: the picture the Gradio event would show, cached, bounded, checked."""
import io
import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from explorer import forward_frames as ff
from explorer.feed import jpeg
from explorer.inputs import Input, from_dataset, from_image_file
from explorer.tabs import forward_handlers as fw

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "images"


@pytest.fixture
def photo():
    return from_image_file(ASSETS / "astronaut.jpg", "astronaut")


def serve(frames, draw=fw.x_t_picture, app=Starlette):
    return TestClient(app(routes=ff.routes(draw, frames)))


def address(frames, inp, schedule="linear", T=1000, seed=0):
    key = frames.register(inp)
    return f"/de-forward/{key}?schedule={schedule}&T={T}&seed={seed}"


def test_the_address_names_the_input_by_its_content_and_only_images_have_one(photo):
    again = from_image_file(ASSETS / "astronaut.jpg", "another label")
    assert ff.input_key(photo) == ff.input_key(again)  # every student on this photo shares its pictures
    assert ff.input_key(photo) != ff.input_key(from_image_file(ASSETS / "camera.jpg", "camera"))
    assert ff.input_key(photo).startswith(ff.RUN)  # a restarted server never answers from an older copy
    url = ff.source(photo, "cosine", 500, 7)
    assert url.startswith("de-forward/") and url.endswith("?schedule=cosine&T=500&seed=7")
    assert ff.marker(photo, "cosine", 500, 7) == f'<span data-frames="{url.replace("&", "&amp;")}"></span>'
    assert ff.source(from_dataset("moons"), "linear", 1000, 0) == ""  # points and signals keep the event
    assert ff.marker(from_dataset("moons"), "linear", 1000, 0) == ""


def test_the_picture_is_the_events_picture_and_the_numbers_come_with_it(photo):
    frames = ff.Frames()
    with serve(frames) as client:
        r = client.get(address(frames, photo, "cosine", 500, 7) + "&t=123")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "immutable" in r.headers["cache-control"]  # the address names all it depends on
    want, _, numbers = fw.noisy(photo, "cosine", 500, 123, 7)
    assert r.content == jpeg(want, fw.FRAME_QUALITY)  # the event's picture, as a JPEG
    assert np.asarray(Image.open(io.BytesIO(r.content))).shape == want.shape
    assert numbers == f'<div class="coeffs">{unquote(r.headers["x-numbers"])}</div>'
    assert "x<sub>123</sub>" in unquote(r.headers["x-numbers"])
    # the histogram's new values: what the event's figure of the same x_t shows
    hist = json.loads(unquote(r.headers["x-histogram"]))
    fig = fw.t_views(photo, "cosine", 500, 123, 7, [], "main")[1].to_dict()
    assert hist["y"] == list(fig["data"][0]["y"]) and hist["name"] == fig["data"][0]["name"] == "x_123"
    assert hist["title"] == fig["layout"]["title"]["text"] and [0, hist["ceiling"]] == list(fig["layout"]["yaxis"]["range"])


def test_a_picture_is_drawn_once_for_everyone(photo):
    calls = []

    def draw(*args):
        calls.append(args[1:])
        return fw.x_t_picture(*args)

    frames = ff.Frames()
    with serve(frames, draw) as client:
        url = address(frames, photo) + "&t=10"
        first, second = client.get(url), client.get(url)
        other = client.get(address(frames, from_image_file(ASSETS / "astronaut.jpg", "again")) + "&t=10")
    assert first.content == second.content == other.content and calls == [("linear", "1000", "10", "0")]


@pytest.mark.parametrize("query, words", [
    ("schedule=linear&T=1000&seed=0&t=1001", "t must be a whole number between 0 and T=1000"),
    ("schedule=linear&T=1000&seed=0&t=1.5", "t must be a whole number"),
    ("schedule=linear&T=5&seed=0&t=1", "T must be a whole number between 10 and 2000"),
    ("schedule=linear&T=1000&seed=-1&t=1", "seed must be a whole number between 0 and"),
    ("schedule=linear&T=1000&seed=0", "t must be a whole number"),
    ("schedule=wavy&T=1000&seed=0&t=1", "unknown schedule 'wavy'"),
])
def test_bad_settings_get_a_message_and_nothing_is_kept(photo, query, words):
    frames = ff.Frames()
    with serve(frames) as client:
        key = frames.register(photo)
        r = client.get(f"/de-forward/{key}?{query}")
        assert r.status_code == 400 and words in r.text
        assert len(frames) == 0 and client.get(f"/de-forward/{key}?schedule=linear&T=1000&seed=0&t=1").status_code == 200


def test_an_input_no_longer_held_is_a_404_and_a_points_input_has_no_pictures(photo):
    frames = ff.Frames()
    with serve(frames) as client:
        r = client.get("/de-forward/nosuchkey?schedule=linear&T=1000&seed=0&t=1")
        assert r.status_code == 404 and "no longer held" in r.text  # the page falls back to the event
        r = client.get(address(frames, from_dataset("moons")) + "&t=1")
        assert r.status_code == 400 and "only an image" in r.text


def test_inputs_and_pictures_are_bounded_least_recently_used_first(photo):
    frames = ff.Frames(max_inputs=2, cache_bytes=10_000)
    pinned = frames.register(photo, pin=True)
    keys = [frames.register(Input("image", torch.full((1, 3, 4, 4), v / 10), f"grey {v}")) for v in range(3)]
    assert frames.input(keys[0]) is None and frames.input(keys[1]) is not None and frames.input(keys[2]) is not None
    assert frames.input(pinned) is photo  # the page's first input stays whatever else comes
    frames.input(keys[1])  # used: kept over keys[2]
    frames.register(Input("image", torch.zeros(1, 3, 4, 4), "black"))
    assert frames.input(keys[1]) is not None and frames.input(keys[2]) is None
    for i in range(10):
        frames.keep(("k", i), bytes(3000), {"numbers": "n"})
        assert frames.held_bytes <= 10_000
    assert frames.cached(("k", 9)) is not None and frames.cached(("k", 0)) is None and len(frames) == 3


def test_the_route_asks_for_the_apps_login(photo):
    class LoggedInApp(Starlette):  # the attributes Gradio's app has when launched with auth
        auth, auth_dependency, cookie_id, tokens = ("teach", "pw"), None, "c1", {"good": "teach"}

    frames = ff.Frames()
    with serve(frames, app=LoggedInApp) as client:
        url = address(frames, photo) + "&t=3"
        assert client.get(url).status_code == 401
        client.cookies.set("access-token-c1", "good")
        assert client.get(url).status_code == 200
