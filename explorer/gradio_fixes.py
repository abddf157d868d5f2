"""Three adjustments to Gradio: an import without its type-stub writer, a start-up check that waits, and
events with hidden progress kept off the page's loading-status list.

The import: about half of `import gradio` on a small CPU.

Every Gradio component class is made by `gradio.component_meta.ComponentMeta`, which calls
`create_or_modify_pyi` for it: it reads the class's source file, parses it with `ast` and
rewrites the `.pyi` stub beside it when the text differs. The stubs only serve editors'
autocompletion of Gradio's own package; nothing reads them at run time. Done for about 80
classes on every import, it was about half of `import gradio` here (benchmarks/startup.py).

`install()` puts a finder on `sys.meta_path` that lets `gradio.component_meta` load as usual
and then replaces that one function by a no-op, before any component class is made. If a
Gradio release renames or drops the function, nothing is replaced and Gradio runs as it is.
Set DIFFUSION_EXPLORER_GRADIO_STUBS=1 to keep the stub writer (for working on Gradio itself).
"""
from __future__ import annotations

import importlib.abc
import os
import sys

MODULE = "gradio.component_meta"
FUNCTION = "create_or_modify_pyi"
KEEP_ENV = "DIFFUSION_EXPLORER_GRADIO_STUBS"


def _no_stub(*args, **kwargs) -> None:
    """Stands in for Gradio's stub writer: component classes are made without touching .pyi files."""


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        if callable(getattr(module, FUNCTION, None)):
            setattr(module, FUNCTION, _no_stub)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> bool:
    """Skip the stub writer for the Gradio about to be imported; False if too late or turned off."""
    if os.environ.get(KEEP_ENV) == "1":
        return False
    module = sys.modules.get(MODULE)
    if module is not None:  # already imported: its component classes are made; nothing left to save
        return False
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    return True


# --- a start-up check that waits on a busy machine -------------------------------------------------
# `launch()` checks that its own page answers (gradio.networking.url_ok) and raises "When localhost is
# not accessible, a shareable link must be created" when it does not. That check gives up at the first
# request that takes over 3 s, which on a 2-core laptop at load 7 (a lecture demo while something else
# runs) happened, and the app did not start. This one keeps asking, with a longer timeout, for as long
# as the server is starting, and is still False when nothing ever answers.
PATIENCE_S = 120.0


def _patient_url_ok(url: str) -> bool:
    import time
    import warnings

    import httpx

    deadline = time.monotonic() + PATIENCE_S
    while True:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore")
                r = httpx.head(url, timeout=15, verify=False)
            if r.status_code in (200, 401, 301, 302, 303, 307, 308):
                return True
        except (ConnectionError, httpx.ConnectError, httpx.TimeoutException):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def patient_startup_check() -> None:
    """Make launch()'s check of its own page wait out a busy machine (idempotent)."""
    import gradio.networking as networking

    if networking.url_ok is not _patient_url_ok:
        networking.url_ok = _patient_url_ok


# --- events with hidden progress off the page's loading-status list -------------------------------
# At each message of a running event (pending, each streamed output, complete) and at each event it
# dispatches, Gradio's page refreshes the loading status of every component that was ever a progress
# target of any event run on the page (`update_loading_stati_state`): one state update with a deep
# copy of the component's properties each, whatever the message carries. A progress target is one of
# the event's outputs unless the event names its own (`show_progress_on`), and a target stays on the
# list for good. Once this app's page had loaded, 59 components were on it and every message of a
# Reverse play refreshed 60 (10-14 ms of main thread for the updates alone on a 2-core CPU, 23-59 ms
# with what they set off). An event whose progress is hidden shows nothing on its outputs anyway, so
# it names no progress targets at all (an empty `show_progress_on`, which the page keeps as it is):
# its outputs never join the list, and the refresh has 18-24 entries (3-6 ms, 5-16 ms in all).
# Events that show progress keep their outputs as targets.


def hide_progress_targets(blocks) -> int:
    """Give every event of `blocks` whose progress is hidden no progress targets (see above); returns how
    many were changed. Events that name their own targets, or show progress, are left as they are."""
    changed = 0
    for fn in blocks.fns.values():
        if fn.show_progress == "hidden" and fn.show_progress_on is None:
            fn.show_progress_on = []
            changed += 1
    return changed
