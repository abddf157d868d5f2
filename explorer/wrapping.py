"""Running an event handler inside a context, keeping what Gradio reads from it.

Gradio calls a handler as what it is (plain, generator, coroutine, async generator) and reads its
signature (gr.Request, gr.Progress parameters), so a wrapper must be of the same kind and carry the
same signature. `within` makes such a wrapper once, for every layer that needs one (errors said
plainly, the serving guards).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import ContextManager


def within(fn: Callable, context: Callable[[], ContextManager]) -> Callable:
    """`fn` run inside a fresh `context()` per call, of the same kind and signature as `fn`.

    For a generator the context spans the whole iteration and is entered at the first item, as
    Gradio starts a streaming handler.
    """
    if inspect.isasyncgenfunction(fn):
        async def wrapper(*args, **kwargs):
            with context():
                async for item in fn(*args, **kwargs):
                    yield item
    elif inspect.isgeneratorfunction(fn):
        def wrapper(*args, **kwargs):
            with context():
                return (yield from fn(*args, **kwargs))
    elif inspect.iscoroutinefunction(fn):
        async def wrapper(*args, **kwargs):
            with context():
                return await fn(*args, **kwargs)
    else:
        def wrapper(*args, **kwargs):
            with context():
                return fn(*args, **kwargs)
    return functools.wraps(fn)(wrapper)


@contextlib.contextmanager
def checked_first(check: Callable[[], None]):
    """A context that runs `check()` on entry (it raises to refuse the call)."""
    check()
    yield
