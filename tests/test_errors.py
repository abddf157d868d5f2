"""explorer.errors: each control's values checked with a message, user errors said without tracebacks."""
import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest

from explorer import errors


def run_async(coro):
    """Run a coroutine to its end in a thread of its own: an earlier test's Playwright (its sync API) can
    leave an event loop running in this thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def controls():
    with gr.Blocks():
        return dict(
            seed=gr.Number(0, precision=0, minimum=0, maximum=100, label="Noise seed"),
            lr=gr.Number(0.01, minimum=1e-6, maximum=1, label="Learning rate"),
            free=gr.Number(3, label="Steps"),
            T=gr.Slider(10, 2000, value=1000, step=10, label="Steps T"),
            eta=gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="eta"),
            t=errors.range_in_handler(gr.Slider(0, 1000, value=250, step=1, label="Timestep t  (0 = clean data)"),
                                      "from 0 to T"),
            on=gr.Checkbox(False, label="Compare with a second sampler (same x_T)"),
            sampler=gr.Dropdown(["ddpm", "ddim"], value="ddim", label="Sampler"),
            ckpt=gr.Dropdown(["a"], value="a", label="Checkpoint", allow_custom_value=True),
            names=gr.CheckboxGroup(["linear", "cosine"], value=["linear"], label="Schedules (up to 3)"),
            speed=gr.Radio(["10", "max"], value="10", label="Speed"),
            text=gr.Textbox("", label="Points"),
            file=gr.File(label="A file"),
        )


@pytest.fixture(scope="module")
def c():
    return controls()


@pytest.mark.parametrize("name, value", [
    ("seed", 0), ("seed", 100), ("seed", 7.0), ("lr", 1e-6), ("lr", 0.5), ("free", -3.5), ("free", 2**53),
    ("T", 15), ("T", 2000), ("eta", 0.33), ("t", 1500), ("t", 0), ("on", True), ("on", False),
    ("sampler", "ddpm"), ("ckpt", "not/listed"), ("ckpt", None), ("names", []), ("names", ["cosine", "linear"]),
    ("speed", "max"), ("text", "1,2"), ("text", None), ("file", None),
])
def test_values_a_control_can_send_pass(c, name, value):
    assert errors.problem(c[name], value) is None


@pytest.mark.parametrize("name, value, message", [
    ("seed", "abc", "Noise seed must be a whole number from 0 to 100, got 'abc'"),
    ("seed", -1, "Noise seed must be a whole number from 0 to 100, got -1"),
    ("seed", 101, "Noise seed must be a whole number from 0 to 100, got 101"),
    ("seed", 1.5, "Noise seed must be a whole number from 0 to 100, got 1.5"),
    ("seed", math.nan, "Noise seed must be a whole number from 0 to 100, got nan"),
    ("seed", None, "Noise seed must be a whole number from 0 to 100, got nothing"),
    ("seed", True, "Noise seed must be a whole number from 0 to 100, got True"),
    ("seed", [1], "Noise seed must be a whole number from 0 to 100, got [1]"),
    ("lr", 2, "Learning rate must be a number from 1e-06 to 1, got 2"),
    ("free", 10**30, "Steps must be a number from -9,007,199,254,740,992 to 9,007,199,254,740,992, "
                     "got 1000000000000000000000000000000"),
    ("free", -math.inf, "Steps must be a number from -9,007,199,254,740,992 to 9,007,199,254,740,992, got -inf"),
    ("T", 5, "Steps T must be a whole number from 10 to 2,000, got 5"),
    ("T", {"a": 1}, "Steps T must be a whole number from 10 to 2,000, got {'a': 1}"),
    ("eta", 1.05, "eta must be a number from 0 to 1, got 1.05"),
    ("t", "abc", "Timestep t must be a whole number from 0 to T, got 'abc'"),
    ("t", math.inf, "Timestep t must be a whole number from 0 to T, got inf"),
    ("on", "abc", "Compare with a second sampler must be true or false, got 'abc'"),
    ("on", 123, "Compare with a second sampler must be true or false, got 123"),
    ("on", math.nan, "Compare with a second sampler must be true or false, got nan"),
    ("sampler", "dpm", "Sampler must be one of 'ddpm', 'ddim', got 'dpm'"),
    ("sampler", ["ddpm"], "Sampler must be one of 'ddpm', 'ddim', got ['ddpm']"),
    ("sampler", None, "Sampler must be one of 'ddpm', 'ddim', got nothing"),
    ("ckpt", ["a"], "Checkpoint must be a name (text), got ['a']"),
    ("names", "linear", "Schedules must be a list of choices from 'linear', 'cosine', got 'linear'"),
    ("names", [["linear"]], "Schedules must be a list of choices from 'linear', 'cosine', got [['linear']]"),
    ("speed", 10, "Speed must be one of '10', 'max', got 10"),
    ("text", {"x": 1}, "Points must be text, got {'x': 1}"),
    ("file", "abc", "A file must be a file uploaded to this app, got 'abc'"),
    ("file", 5, "A file must be a file uploaded to this app, got 5"),
])
def test_values_no_control_sends_are_named_with_what_is_allowed(c, name, value, message):
    assert errors.problem(c[name], value) == message


def test_long_values_are_cut_short(c):
    message = errors.problem(c["text"], ["x" * 500])
    assert message.startswith("Points must be text, got ['xxx") and message.endswith("…")
    assert len(message) < 100


def test_a_slider_whose_handler_checks_the_range_is_not_refused_by_its_first_bounds(c):
    assert c["t"].preprocess(1500) == 1500
    assert c["T"].preprocess(2000) == 2000
    with pytest.raises(gr.Error):  # an ordinary slider keeps Gradio's own check
        c["T"].preprocess(2010)
    assert c["t"].api_info()["description"] == "numeric value from 0 to T"


def test_user_errors_become_quiet_messages_and_bugs_stay_bugs():
    def refuse(kind):
        if kind == "value":
            raise ValueError("t must be between 0 and T=1000, got 2000")
        if kind == "gr":
            raise gr.Error("Choose a checkpoint first.")
        raise TypeError("unhashable type: 'list'")

    wrapped = errors.user_facing(refuse)
    with pytest.raises(gr.Error) as e:
        wrapped("value")
    assert e.value.message == "t must be between 0 and T=1000, got 2000" and e.value.print_exception is False
    with pytest.raises(gr.Error) as e:
        wrapped("gr")
    assert e.value.message == "Choose a checkpoint first." and e.value.print_exception is False
    with pytest.raises(TypeError, match="unhashable"):
        wrapped("bug")


def test_generators_and_coroutines_keep_their_kind():
    def frames(n):
        yield 1
        if n < 0:
            raise ValueError("n must be at least 0")
        yield 2

    async def later(x):
        if x is None:
            raise OverflowError("x must be a finite number")
        return x

    gen = errors.user_facing(frames)
    assert list(gen(1)) == [1, 2]
    with pytest.raises(gr.Error, match="n must be at least 0"):
        list(gen(-1))
    co = errors.user_facing(later)
    assert run_async(co(3)) == 3
    with pytest.raises(gr.Error, match="x must be a finite number"):
        run_async(co(None))
    import inspect
    assert inspect.isgeneratorfunction(gen) and inspect.iscoroutinefunction(co)


def test_the_guard_checks_inputs_before_gradio_and_before_the_function():
    from gradio.state_holder import SessionState

    calls = []

    def fn(seed, on):
        calls.append((seed, on))
        if seed == 3:
            raise ValueError("seed 3 is taken; choose another")
        return f"{seed} {on}"

    with gr.Blocks() as demo:
        seed = gr.Number(0, precision=0, minimum=0, maximum=10, label="Seed")
        on = gr.Checkbox(False, label="On")
        out = gr.Textbox()
        gr.Button().click(fn, [seed, on], out, api_name="go")
    errors.guard(demo)
    assert errors.guard(demo) is demo  # applying it twice wraps once

    def run(*inputs):
        return run_async(demo.process_api(block_fn=0, inputs=list(inputs), state=SessionState(demo)))

    assert run(4, True)["data"] == ["4 True"]
    for inputs, message in [(("abc", True), "Seed must be a whole number from 0 to 10, got 'abc'"),
                            ((11, True), "Seed must be a whole number from 0 to 10, got 11"),
                            ((2, "yes"), "On must be true or false, got 'yes'"),
                            ((3, False), "seed 3 is taken; choose another")]:
        with pytest.raises(gr.Error) as e:
            run(*inputs)
        assert e.value.message == message and e.value.print_exception is False
    assert calls == [(4, True), (3, False)]  # refused inputs never reached the function


def test_a_range_left_to_the_handler_stays_with_it_after_an_update_narrows_the_sessions_bounds():
    """Gradio keeps each session's updated control as a new object with an id of its own; the range left to
    the handler is still found. (The session's narrowed bounds refused a value sent before the update landed
    on the page: "Steps must be a whole number from 1 to 200, got 1000".)"""
    from gradio.state_holder import SessionState

    calls = []

    def fit(T):
        return gr.update(maximum=T, value=min(50, T)), gr.update(maximum=T)

    def go(steps, plain):
        calls.append((steps, plain))
        if steps > 200:
            raise ValueError(f"steps must be from 1 to T = 200, got {steps}")
        return f"{steps} {plain}"

    with gr.Blocks() as demo:
        T = gr.Number(1000, precision=0, label="T")
        steps = errors.range_in_handler(gr.Slider(1, 1000, value=50, step=1, label="Steps"), "from 1 to T")
        plain = gr.Slider(1, 1000, value=50, step=1, label="Plain")
        out = gr.Textbox()
        T.change(fit, T, [steps, plain], api_name="fit")
        gr.Button().click(go, [steps, plain], out, api_name="go")
    errors.guard(demo)
    state = SessionState(demo)

    def run(fn_index, *inputs):
        return run_async(demo.process_api(block_fn=fn_index, inputs=list(inputs), state=state))

    run(0, 200)
    assert state[steps._id]._id != steps._id and state[steps._id].maximum == 200  # the session's own copy
    assert run(1, 150, 150)["data"] == ["150 150"]
    with pytest.raises(gr.Error, match="steps must be from 1 to T = 200, got 1000"):  # the handler's words
        run(1, 1000, 150)
    with pytest.raises(gr.Error, match="Plain must be a whole number from 1 to 200, got 300"):  # bounds kept
        run(1, 150, 300)
    assert calls == [(150, 150), (1000, 150)]
