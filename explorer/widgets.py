"""Small UI building blocks the tabs share: a data view that suits every data kind, error mapping."""
from __future__ import annotations

import functools
from typing import Callable

import gradio as gr


class DataView:
    """One view of data: a gr.Image for images, a gr.Plot for points and signals; one is visible.

    Create it inside a layout block. Handlers return `view.show(kind, value)` (two outputs, in the
    order of `view.outputs`): the value goes to the component that suits `kind` and the other is
    hidden. `view.fast(kind, value)` skips the visibility update, for events fired while dragging.
    Gradio mounts the shown component and removes the other: both carry the class `de-view`, by which
    the page's explorer/view_swap.js keeps the last drawn look and the view's height until the new one is drawn.
    """

    def __init__(self, label: str, elem_id: str, kind: str = "image", value=None, height: int | None = 260,
                 show_label: bool = True, steady: bool = False):
        """steady: the picture shows the same as the figure (the Reverse tab's frames drawn on the server),
        so after a swap the view keeps the taller of the two heights when they are within 15% of each other
        (view_swap.js) and the page below does not shift by the few pixels between them."""
        is_image = kind == "image"
        classes = ["de-view", "de-steady"] if steady else ["de-view"]
        # JPEG: ~1 ms to encode a 256x256 view against ~20 ms for WebP (the default) or ~30 ms for PNG.
        self.image = gr.Image(value if is_image else None, label=label, format="jpeg", type="numpy",
                              interactive=False, height=height, elem_id=elem_id, visible=is_image,
                              show_label=show_label, buttons=["download", "fullscreen"],
                              elem_classes=classes)
        # Figures carry their own titles; a component label would sit on top of them.
        if not is_image and value is not None and show_label:
            value.with_title(label)
        self.plot = gr.Plot(None if is_image else value, label=label, show_label=False, visible=not is_image,
                            elem_id=f"{elem_id}-plot", elem_classes=classes)

    @property
    def outputs(self) -> list:
        return [self.image, self.plot]

    @staticmethod
    def show(kind: str, value, label: str | None = None) -> tuple:
        """Updates that put `value` in the component for `kind` and hide the other.

        label: the image's label, or the figure's title for points and signals.
        """
        if kind == "image":
            extra = {} if label is None else {"label": label}
            return gr.update(value=value, visible=True, **extra), gr.update(visible=False)
        if label is not None and value is not None:
            value.with_title(label)
        return gr.update(visible=False), gr.update(value=value, visible=True)

    @staticmethod
    def value_of(image_update: dict, plot_update: dict):
        """The value inside whichever update of a `show` pair is visible (None if neither)."""
        for u in (image_update, plot_update):
            if u.get("visible"):
                return u.get("value")
        return None

    @staticmethod
    def fast(kind: str, value, title: str | None = None) -> tuple:
        """Just the new value for the visible component; the hidden one is left alone.

        title: a figure's title. An image keeps its label, so API clients get a plain file back.
        """
        if kind == "image":
            return value, gr.skip()
        return gr.skip(), (value if title is None or value is None else value.with_title(title))


def user_errors(fn: Callable) -> Callable:
    """Show a ValueError's message to the user as a gr.Error instead of a generic failure.

    Core functions raise ValueError with messages written for people ("t must be between 0 and
    T=1000, got 2000"), so they can be shown as they are. Other exceptions stay bugs.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise gr.Error(str(e)) from e

    return wrapper


def user_errors_gen(fn: Callable) -> Callable:
    """`user_errors` for generator handlers (streaming views)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except ValueError as e:
            raise gr.Error(str(e)) from e

    return wrapper


# $...$ inline and $$...$$ display maths, rendered by KaTeX in the browser.
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def md(text: str, **kwargs) -> gr.Markdown:
    """Markdown with inline and display LaTeX."""
    return gr.Markdown(text, latex_delimiters=LATEX, **kwargs)
