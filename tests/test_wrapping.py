"""explorer.wrapping.within: a handler run inside a context keeps its kind and its signature."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading

import gradio as gr
import pytest

from explorer.wrapping import checked_first, within


def recorder():
    events = []

    @contextlib.contextmanager
    def context():
        events.append("enter")
        try:
            yield
        finally:
            events.append("exit")
    return events, context


def plain(x: int, request: gr.Request = None):
    return x + 1


def gen(x: int, progress=gr.Progress()):
    yield x
    yield x + 1


async def coro(x: int):
    return x * 2


async def agen(x: int):
    yield x
    yield -x


def run_async(awaitable):
    out = []  # in a thread of its own: a browser test may have left an event loop running in this one
    t = threading.Thread(target=lambda: out.append(asyncio.run(awaitable)))
    t.start()
    t.join()
    return out[0]


def test_each_kind_keeps_its_kind_signature_and_result_inside_the_context():
    events, context = recorder()
    w = within(plain, context)
    assert w(1) == 2 and events == ["enter", "exit"]
    assert inspect.signature(w) == inspect.signature(plain)  # gradio finds gr.Request through it

    events.clear()
    g = within(gen, context)(5)
    assert inspect.isgenerator(g) and events == []  # entered at the first item, as gradio starts a stream
    assert next(g) == 5 and events == ["enter"]
    assert list(g) == [6] and events == ["enter", "exit"]
    assert "progress" in inspect.signature(within(gen, context)).parameters

    events.clear()
    c = within(coro, context)
    assert inspect.iscoroutinefunction(c) and run_async(c(4)) == 8 and events == ["enter", "exit"]

    events.clear()
    a = within(agen, context)

    async def collect():
        return [item async for item in a(3)]
    assert inspect.isasyncgenfunction(a) and run_async(collect()) == [3, -3] and events == ["enter", "exit"]


def test_a_check_first_refuses_before_the_handler_runs():
    ran = []

    def refuse():
        raise gr.Error("no")

    w = within(lambda: ran.append(1), lambda: checked_first(refuse))
    with pytest.raises(gr.Error, match="no"):
        w()
    assert ran == []
