"""explorer.guards: rate limits per client on expensive endpoints, and the student role."""
import pytest
from gradio.context import LocalContext
from gradio_client import Client

from explorer import guards
from explorer.serving import Limits, Logins


class FakeClock:
    def __init__(self):
        self.now = 500.0

    def __call__(self):
        return self.now


class FakeRequest:
    def __init__(self, username, host):
        self.username = username
        self.client = type("Client", (), {"host": host})()


def test_a_sliding_window_per_group_and_client():
    clock = FakeClock()
    limiter = guards.RateLimiter({"sampling": 2, "export": 1}, 60, clock)
    limiter.check("sampling", "a")
    clock.now += 30
    limiter.check("sampling", "a")
    with pytest.raises(Exception, match=r"Too many sampling requests from you: at most 2 a minute. Try again in 30 s."):
        limiter.check("sampling", "a")
    limiter.check("sampling", "b")  # another client has its own count
    limiter.check("export", "a")  # and another group
    clock.now += 30  # the first call leaves the window
    limiter.check("sampling", "a")
    with pytest.raises(Exception, match="Try again in 30 s"):
        limiter.check("sampling", "a")


def test_every_guarded_name_is_a_real_endpoint_of_the_app(app):
    names = {f.api_name for f in app.fns.values()}
    assert guards.TEACHER_ONLY <= names
    assert set(guards.GROUPS) == {group for group, _ in Limits().per_minute}


@pytest.fixture
def limited(app, app_url):
    clock = FakeClock()
    undo = guards.apply(app, Limits(per_minute=(("training", 1), ("sampling", 1), ("evaluation", 1),
                                                ("export", 1))), None, clock)
    yield clock
    undo()


def test_the_running_app_refuses_a_client_over_its_export_limit(limited, app_url):
    client = Client(app_url, verbose=False)
    clock = limited
    first = None
    try:
        client.predict(api_name="/quiz_export")
    except Exception as e:  # no quiz yet: the app's own message, not the limit
        first = str(e)
    assert first is None or "Too many" not in first
    with pytest.raises(Exception, match=r"Too many export requests from you: at most 1 a minute. Try again in 60 s."):
        client.predict(api_name="/quiz_export")
    client.predict(api_name="/train_status")  # endpoints outside the groups are not limited
    clock.now += 60
    try:
        client.predict(api_name="/quiz_export")
    except Exception as e:
        assert "Too many" not in str(e)


def test_undo_takes_the_guards_off(app):
    before = {i: f.fn for i, f in app.fns.items()}
    undo = guards.apply(app, Limits(), Logins(("t", "p"), ("s", "q")))
    changed = {i for i, f in app.fns.items() if f.fn is not before[i]}
    assert {app.fns[i].api_name for i in changed} == guards.TEACHER_ONLY
    undo()
    assert all(f.fn is before[i] for i, f in app.fns.items())


def _call_as(app, api_name, username):
    fn = next(f.fn for f in app.fns.values() if f.api_name == api_name)
    token = LocalContext.request.set(FakeRequest(username, "10.0.0.7"))
    try:
        return fn()
    finally:
        LocalContext.request.reset(token)


def test_students_are_refused_teacher_endpoints_and_may_take_the_quiz(app):
    before = {i: f.fn for i, f in app.fns.items()}
    undo = guards.apply(app, None, Logins(("teach", "p"), ("kids", "q")))
    try:
        with pytest.raises(Exception, match="Students can take the quiz and look around; this needs the teacher's login"):
            _call_as(app, "quiz_results", "kids")
        _call_as(app, "quiz_results", "teach")  # the teacher's login runs it
        assert "quiz_next" not in guards.TEACHER_ONLY and "quiz_vote_real" not in guards.TEACHER_ONLY
        guarded = {f.api_name for i, f in app.fns.items() if f.fn is not before[i]}
        assert guarded == guards.TEACHER_ONLY  # without rate limits, only the students' refusals
    finally:
        undo()


def test_guards_keep_a_generator_a_generator(app):
    import inspect

    undo = guards.apply(app, Limits(), None)
    try:
        play = next(f for f in app.fns.values() if f.api_name == "reverse_play")
        assert inspect.isgeneratorfunction(play.fn) and play.types_generator
        assert inspect.signature(play.fn) == inspect.signature(play.fn.__wrapped__)
    finally:
        undo()


def test_logins_through_gradio_auth_and_the_student_role_over_http():
    """A small app with the guarded names, launched behind the logins as launch.py does."""
    import gradio as gr

    from conftest import free_port

    logins = Logins(("teach", "pw-t"), ("kids", "pw-k"))
    with gr.Blocks() as demo:
        out = gr.Textbox()
        gr.Button().click(lambda: "results", None, out, api_name="quiz_results")
        gr.Button().click(lambda: "next picture", None, out, api_name="quiz_next")
    guards.apply(demo, None, logins)
    demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                        auth=logins.check)
    try:
        with pytest.raises(Exception):
            Client(demo.local_url, verbose=False)  # no login, no app
        with pytest.raises(Exception):
            Client(demo.local_url, verbose=False, auth=("kids", "wrong"))
        teacher = Client(demo.local_url, verbose=False, auth=("teach", "pw-t"))
        assert teacher.predict(api_name="/quiz_results") == "results"
        student = Client(demo.local_url, verbose=False, auth=("kids", "pw-k"))
        assert student.predict(api_name="/quiz_next") == "next picture"
        with pytest.raises(Exception, match="Students can take the quiz and look around"):
            student.predict(api_name="/quiz_results")
    finally:
        demo.close()
