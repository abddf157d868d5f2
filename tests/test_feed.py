"""The live frame feed: newest frame wins, nothing piles up, the route answers as documented."""
import io
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from explorer import feed as feed_mod
from explorer.feed import Feed, Feeds, jpeg, marker


def picture(value: int) -> bytes:
    return jpeg(np.full((8, 12, 3), value, np.uint8))


def test_jpeg_round_trip_keeps_size_and_colour():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0] = 200
    back = np.asarray(Image.open(io.BytesIO(jpeg(rgb))))
    assert back.shape == (10, 20, 3) and abs(int(back[..., 0].mean()) - 200) <= 2


def test_the_newest_frame_wins_and_the_ones_between_are_never_sent():
    f = Feed()
    assert f.hungry and f.take(0) is None
    for k in range(3):
        f.publish(picture(k * 50), f"frame {k}", k, k + 1)
    assert not f.hungry  # three published, none taken: the run draws no more until the page takes one
    seq, data, caption, index, frames = f.take(0)
    assert (seq, caption, index, frames) == (3, "frame 2", 2, 3)
    assert f.hungry and f.take(seq) is None  # nothing newer than what the page has
    f.publish(picture(9), "frame 3", 3, 4)
    assert f.take(seq)[0] == 4
    f.close()
    assert f.closed and f.take(0) is None


def test_feeds_are_bounded_and_a_closed_one_is_gone():
    feeds = Feeds(max_open=2)
    a, b = feeds.open(), feeds.open()
    c = feeds.open()  # over the bound: the oldest is closed
    assert a.closed and feeds.get(a.token) is None and feeds.get(c.token) is c and len(feeds) == 2
    feeds.close(b)
    assert b.closed and feeds.get(b.token) is None
    assert len({a.token, b.token, c.token}) == 3 and len(c.token) >= 20


def test_marker_names_the_token_or_nothing():
    f = Feed()
    assert marker(f) == f'<span data-feed="{f.token}"></span>' and marker(None) == ""


@pytest.fixture
def http(monkeypatch):
    monkeypatch.setattr(feed_mod, "FEEDS", Feeds())
    monkeypatch.setattr(feed_mod, "WAIT_S", 0.05)
    with TestClient(Starlette(routes=feed_mod.routes())) as client:
        yield client, feed_mod.FEEDS


def test_route_sends_the_newest_frame_with_its_caption(http):
    client, feeds = http
    f = feeds.open()
    f.publish(picture(10), "step **1** of 50 · ᾱ_t = 0.5", 0, 1)
    f.publish(picture(20), "step **2** of 50 · ᾱ_t = 0.6", 1, 2)
    r = client.get(f"/de-feed/{f.token}?after=0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-seq"] == "2" and r.headers["x-frame"] == "1" and r.headers["x-frames"] == "2"
    assert unquote(r.headers["x-caption"]) == "step **2** of 50 · ᾱ_t = 0.6"
    assert r.headers["cache-control"] == "no-store"
    assert Image.open(io.BytesIO(r.content)).size == (12, 8)


def test_route_waits_then_says_ask_again_then_gone(http):
    client, feeds = http
    f = feeds.open()
    assert client.get(f"/de-feed/{f.token}?after=0").status_code == 204  # nothing published within the wait
    feeds.close(f)
    assert client.get(f"/de-feed/{f.token}?after=0").status_code == 410
    assert client.get("/de-feed/not-a-token?after=0").status_code == 410


def test_route_refuses_a_bad_after(http):
    client, feeds = http
    r = client.get(f"/de-feed/{feeds.open().token}?after=x")
    assert r.status_code == 400 and "whole number" in r.text


def test_route_asks_for_the_apps_login():
    class LoggedInApp(Starlette):  # the attributes Gradio's app has when launched with auth
        auth, auth_dependency, cookie_id, tokens = ("teach", "pw"), None, "c1", {"good": "teach"}

    feeds = feed_mod.FEEDS
    f = feeds.open()
    f.publish(picture(1), "x", 0, 1)
    try:
        with TestClient(LoggedInApp(routes=feed_mod.routes())) as client:
            assert client.get(f"/de-feed/{f.token}?after=0").status_code == 401
            client.cookies.set("access-token-c1", "bad")
            assert client.get(f"/de-feed/{f.token}?after=0").status_code == 401
            client.cookies.set("access-token-c1", "good")
            assert client.get(f"/de-feed/{f.token}?after=0").status_code == 200
    finally:
        feeds.close(f)


def test_route_sends_a_scrubbed_frame_from_the_viewer_and_refuses_a_bad_one(http):
    client, feeds = http
    asked = []
    f = feeds.open(viewer=lambda k: asked.append(k) or ((picture(k), "", k, 9) if k < 9 else None))
    try:
        r = client.get(f"/de-feed/{f.token}?frame=4")
        assert r.status_code == 200 and r.headers["x-frame"] == "4" and r.headers["x-frames"] == "9"
        assert client.get(f"/de-feed/{f.token}?frame=12").status_code == 204  # the viewer declined
        assert client.get(f"/de-feed/{f.token}?frame=x").status_code == 400
        assert asked == [4, 12] and f.seq == 0 and f.take(0) is None  # nothing published, nothing moved
        plain = feeds.open()
        assert client.get(f"/de-feed/{plain.token}?frame=1").status_code == 204  # no viewer
        feeds.close(f)
        assert client.get(f"/de-feed/{f.token}?frame=1").status_code == 410
        assert f.view(1) is None and asked == [4, 12]  # a closed feed draws nothing
    finally:
        feeds.close(f)


# --- armed feeds: Play's first frame before Play's event -------------------------------------------

def test_an_armed_feed_draws_the_first_frame_once_and_a_play_takes_it_over():
    calls = []
    f = Feed(lambda commit: calls.append(commit) or (picture(40), "frame 5", 5, 9))
    assert f.armed and f.take(0) is None and not calls  # nothing drawn until the page asks
    assert f.peek()[2] == 5 and calls == [False] and f.armed and f.seq == 0  # a look ahead changes nothing
    assert f.start() and calls == [False, True] and not f.armed
    seq, _, caption, index, frames = f.take(0)
    assert (seq, caption, index, frames) == (1, "frame 5", 5, 9) and f.hungry
    assert not f.start() and calls == [False, True] and f.peek() is None  # once
    assert f.disarm() == 5  # the play goes on from the frame the page was sent
    f.publish(picture(50), "frame 6", 6, 9)
    assert f.take(1)[3] == 6


def test_an_armed_feed_that_declines_stays_armed_and_one_taken_over_draws_nothing():
    answers = [None, (picture(1), "frame 1", 1, 2)]
    f = Feed(lambda commit: answers.pop(0))
    assert not f.start() and f.armed and f.seq == 0  # declined (the run must compute first): a later click may ask
    assert f.start() and f.started == 1
    g = Feed(lambda commit: pytest.fail("a feed a play took over must not draw"))
    assert g.disarm() is None and not g.armed
    assert not g.start() and g.seq == 0
    closed = Feed(lambda commit: pytest.fail("a closed feed must not draw"))
    closed.close()
    assert not closed.start()


def test_feeds_over_the_bound_close_an_armed_one_before_a_playing_one():
    feeds = Feeds(max_open=2)
    playing = feeds.open()
    armed = feeds.open(lambda commit: None)
    feeds.open()
    assert armed.closed and not playing.closed and feeds.get(playing.token) is playing


def test_route_play_draws_the_armed_frame_and_plain_requests_do_not(http):
    client, feeds = http
    f = feeds.open(lambda commit: (picture(30), "step **3** of 50", 2, 51))
    assert client.get(f"/de-feed/{f.token}?after=0").status_code == 204 and f.armed  # no play=1: just waits
    assert client.get(f"/de-feed/{f.token}?after=3&play=1").status_code == 204 and f.armed  # not a first request
    r = client.get(f"/de-feed/{f.token}?peek=1")  # the page's look ahead: the frame, nothing published
    assert r.status_code == 200 and r.headers["x-frame"] == "2" and r.headers["x-seq"] == "0" and f.armed
    assert f.seq == 0 and client.get("/de-feed/nobody?peek=1").status_code == 204
    r = client.get(f"/de-feed/{f.token}?after=0&play=1")
    assert r.status_code == 200 and r.headers["x-seq"] == "1" and r.headers["x-frame"] == "2"
    assert f.disarm() == 2


def test_armed_marker_names_the_token_or_nothing():
    from explorer.feed import armed_marker

    f = Feed(lambda commit: None)
    assert armed_marker(f) == f'<span data-armed="{f.token}"></span>' and armed_marker(None) == ""
