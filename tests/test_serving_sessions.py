"""explorer.sessions: small sessions, idle ones dropped, a cap on live ones; on the real running app."""
import copy

import gradio as gr
import pytest
from gradio.state_holder import SessionState
from gradio_client import Client

from explorer import sessions
from explorer.inputs import from_dataset
from explorer.serving import Limits


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def bounded(app, app_url):
    """The running app with a bounded holder (cap 3, idle 10 min, fake clock), put back afterwards."""
    server = app.server_app
    old = server.state_holder
    clock = FakeClock()
    holder = sessions.install(app, Limits(max_sessions=3, idle_minutes=10), clock)
    holder.session_data.clear()  # the other tests' sessions stay in the old holder, restored below
    holder.last_used.clear()
    yield holder, clock
    server.state_holder = old
    old.set_blocks(app)


@pytest.fixture(scope="module")
def api(app_url):
    return Client(app_url, verbose=False)


def call_as(api, session_hash):
    api.session_hash = session_hash
    return api.predict(api_name="/train_status")


def test_a_lean_session_has_gradio_session_state_attributes(app):
    lean, full = sessions.LeanSessionState(app), SessionState(app)
    # an upgrade of Gradio that adds an attribute fails here (blocks_config is a property of the lean one)
    assert set(vars(full)) - {"blocks_config"} <= set(vars(lean)) and lean.blocks_config is not None
    assert lean.config_values == {}  # nothing made up front
    assert list(lean.components) == list(full.components)  # the deep-link route still sees every config


def test_a_lean_session_shares_the_app_config_until_it_changes_a_component(app):
    state = sessions.LeanSessionState(app)
    state_id = next(k for k, b in app.blocks.items() if isinstance(b, gr.State))
    textbox_id, textbox = next((k, b) for k, b in app.blocks.items() if isinstance(b, gr.Textbox))
    state[state_id] = "mine"
    assert state.blocks_config is app.default_config and state[state_id] == "mine"
    changed = gr.Textbox(label="changed", render=False)
    state[textbox_id] = changed
    assert state.blocks_config is not app.default_config and state.blocks_config.blocks[textbox_id] is changed
    assert app.default_config.blocks[textbox_id] is textbox  # the app and other sessions are untouched
    assert sessions.LeanSessionState(app).blocks_config.blocks[textbox_id] is textbox


def test_the_app_has_no_deep_link_button_whose_values_lean_sessions_do_not_keep(app):
    assert not any(isinstance(b, gr.DeepLinkButton) for b in app.blocks.values())


def test_a_starting_picture_is_shared_not_copied_into_each_session():
    x = from_dataset("digits", 0)
    assert copy.deepcopy(x) is x


def test_the_class_is_full_at_the_cap_and_live_sessions_keep_working(bounded, api):
    holder, clock = bounded
    for s in ("s1", "s2", "s3"):
        call_as(api, s)
    assert len(holder.session_data) == 3
    with pytest.raises(Exception, match=r"The class is full \(3 people are using this app\); try again in a minute"):
        call_as(api, "s4")
    assert holder.refused == 1 and "s4" not in holder.session_data
    clock.now += 9 * 60
    call_as(api, "s1")  # a live session is never pushed out by a newcomer
    assert set(holder.session_data) == {"s1", "s2", "s3"}


def test_idle_sessions_are_dropped_and_make_room(bounded, api):
    holder, clock = bounded
    for s in ("s1", "s2", "s3"):
        call_as(api, s)
    clock.now += 5 * 60
    call_as(api, "s1")
    clock.now += 5 * 60 + 1  # s2, s3 idle just over 10 min; s1 for 5 min
    call_as(api, "s4")
    assert list(holder.session_data) == ["s1", "s4"] and holder.expired == 2
    assert holder.live() == 2


def test_a_closed_tab_is_let_go_after_a_minute(bounded, api):
    holder, clock = bounded
    for s in ("s1", "s2", "s3"):
        call_as(api, s)
    holder.session_data["s2"].is_closed = True  # what Gradio marks when a browser tab's heartbeat ends
    clock.now += 60
    assert holder.live() == 3  # a reload within the minute finds its session
    clock.now += 1
    assert holder.live() == 2 and "s2" not in holder.session_data
    call_as(api, "s5")
    assert len(holder.session_data) == 3


def test_install_needs_a_launched_app():
    with gr.Blocks() as demo:
        gr.Markdown("x")
    with pytest.raises(RuntimeError, match="launch the app before bounding its sessions"):
        sessions.install(demo, Limits())
