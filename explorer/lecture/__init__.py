"""The lecture layer: what serves a room rather than a desk, in one place so the tabs stay small.

- `present.css` and `page.js`: the presenter view (a class on <body>, not a second copy of each
  tab), the page-level key map, fullscreen of the main view, and the URL that follows the view;
  `contrast.css` the high-contrast themes and `dark.css` what Gradio's own dark theme needs besides.
- `url_state`: a link's settings read and checked; each tab applies them with its own restorer.
- `header()`: the bar with the presenter toggle, the controls drawer, Copy link, the key map and the
  class's join card (`join`: the quiz's address as a QR code).
- `Restorer` and `restore_on_load()`: one load event that applies a link to every tab.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from . import lessons, url_state

HERE = Path(__file__).parent
CSS = "".join((HERE / name).read_text() for name in ("present.css", "contrast.css", "dark.css"))
READY = '<span data-ready="1"></span>'


def page_js(present: bool = False, samplers: dict[str, str] | None = None, tabs=url_state.TABS,
            scripts: tuple[Path, ...] = ()) -> str:
    """The page script for `launch(js=...)`, with the settings it needs from Python.

    scripts: more page scripts (each a `() => { ... }` file, such as a tab's player) run after this layer's.
    """
    settings = json.dumps({"present": bool(present), "samplers": samplers or {}, "tabs": list(tabs),
                           "firstViews": {tab: views[0] for tab, views in url_state.VIEWS.items()}})
    calls = []
    for path in (HERE / "page.js", *scripts):
        body = Path(path).read_text().strip()
        if not (body.startswith("() => {") and body.endswith("}")):
            raise ValueError(f"{path}: a page script must be one function, () => {{ ... }}")
        calls.append("  (" + body + ")();\n")
    return "() => {\n  window.__DE = " + settings + ";\n" + "".join(calls) + "}"


@dataclass
class LessonBar:
    """The lesson widgets: a chooser, Previous / Next (also PageUp / PageDown), the stop's text."""

    choice: gr.Dropdown
    prev: gr.Button
    next: gr.Button
    text: gr.Markdown
    index: gr.State
    box: gr.Accordion


def header(join_card: str = "") -> LessonBar:
    """The lecture bar (buttons handled in the browser by page.js), the lesson bar, the ready marker.

    join_card: the HTML of the class's join card (`join.card_html`), shown by Join or the key J.
    """
    with gr.Row(elem_id="de-bar"):
        prev = gr.Button("◀ Back", elem_id="de-lesson-prev", size="sm", min_width=60, scale=0)
        nxt = gr.Button("Next ▶", elem_id="de-lesson-next", size="sm", min_width=60, scale=0)
        gr.Button("☰ Controls (C)", elem_id="de-drawer", size="sm", min_width=60, scale=0)
        gr.Button("Copy link", elem_id="de-copy-link", size="sm", min_width=60, scale=0)
        gr.Button("Keys (?)", elem_id="de-keys-button", size="sm", min_width=60, scale=0)
        gr.Button("Join (J)", elem_id="de-join-button", size="sm", min_width=60, scale=0)
        gr.Button("◐ Contrast (H)", elem_id="de-contrast", size="sm", min_width=60, scale=0)
        gr.Button("Lesson text (L)", elem_id="de-lesson-card-button", size="sm", min_width=60, scale=0)
        gr.Button("Presenter view (P)", elem_id="de-present", size="sm", min_width=60, scale=0)
    with gr.Accordion("Lesson", open=False, elem_id="de-lesson") as box:
        with gr.Row():
            choice = gr.Dropdown(list(lessons.available()), value=None, label="Guided lesson", scale=1,
                                 elem_id="de-lesson-choice")
            text = gr.Markdown("Choose a lesson: each stop sets up a view and explains it. ◀ Back / Next ▶ "
                               "(or PageUp / PageDown, as presentation clickers send) move through it.",
                               latex_delimiters=[{"left": "$$", "right": "$$", "display": True}],
                               elem_id="de-lesson-text")
    gr.HTML("", elem_id="de-ready")
    gr.HTML(join_card, elem_id="de-join")
    return LessonBar(choice, prev, nxt, text, gr.State(LessonPosition), box)


class LessonPosition:
    """The stop a browser session is at. A mutable object in a gr.State is shared by reference by
    that session's events, so quick clicks of Next each move on from the stop the last one reached
    (a plain number would be read when each click is sent, and two clicks would land on one stop)."""

    def __init__(self):
        self.k = -1
        self.name: str | None = None  # the lesson chosen (by the chooser, a link or a first Next ▶)
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):  # gr.State copies its initial value for each new session
        return LessonPosition()


@dataclass
class Restorer:
    """How a tab applies a link: the components it sets and fn(settings, problems) -> their updates.

    fn appends a message to `problems` for each setting it cannot use, and returns gr.skip() for
    every output when the link names nothing of its own.
    """

    outputs: list
    fn: Callable[[dict[str, Any], list[str]], tuple]


OPENING = "_opening"  # set in the settings only when the page itself is being opened


def with_views(restorer: Restorer, tab: str, views: gr.Tabs) -> Restorer:
    """The restorer, plus opening the inner tab a link or lesson stop names (`view=`) in `views`.

    `views` is the tab's gr.Tabs; its gr.Tab children have the ids of url_state.VIEWS[tab] and
    elem_id "view-<id>" (the page script reads the open one back into the URL).
    """
    def fn(values: dict, problems: list[str]) -> tuple:
        view = values.get("view") if values.get("tab", url_state.TABS[0]) == tab else None
        return (*restorer.fn(values, problems), gr.Tabs(selected=view) if view else gr.skip())
    return Restorer([*restorer.outputs, views], fn)


def _apply(values: dict, problems: list[str], restorers: list[Restorer]) -> list:
    """The settings-to-view function a link, a lesson stop and a bundle share: [tabs, *each tab's outputs]."""
    out: list = [gr.Tabs(selected=values["tab"]) if "tab" in values else gr.skip()]
    for r in restorers:
        try:
            got = r.fn(values, problems)
        except gr.Error as e:  # a setting only the tab could check: the tab keeps its defaults
            problems.append(str(getattr(e, "message", e)))
            got = (gr.skip(),) * len(r.outputs)
        out.extend(got)
    return out


def _lesson_named(name: str) -> lessons.Lesson:
    """The lesson of that name in assets/lessons/. KeyError (with the names there, joined) when there is
    none; LessonError or OSError when its file cannot be used."""
    found = lessons.available()
    if name not in found:
        raise KeyError(", ".join(found))
    return lessons.load_lesson(found[name])


def _link_lesson(values: dict, problems: list[str], position) -> tuple[dict, tuple]:
    """A link's lesson=NAME&stop=K: (the settings to apply, the lesson bar's outputs).

    The stop's own settings come first and the link's others over them (a link written after the
    lecturer moved t at that stop keeps that t). Without a lesson, or with one that cannot be used
    (named in `problems`), the settings are the link's and the lesson bar is left as it is.
    `position` (the session's LessonPosition) is set to the stop, so Next goes on from there.
    """
    name, stop = values.pop("lesson", None), values.pop("stop", None)
    skip = (gr.skip(),) * 3
    if name is None:
        if stop is not None:
            problems.append(f"the link's stop={stop} names no lesson (add lesson=NAME); ignored")
        return values, skip
    try:
        lesson = _lesson_named(name)
    except KeyError as e:
        problems.append(f"there is no lesson {name!r} here (lessons: {e.args[0] or 'none'})")
        return values, skip
    except (lessons.LessonError, OSError) as e:
        problems.append(f"the lesson {name!r} cannot be used: {e}")
        return values, skip
    k = (stop or 1) - 1
    if k >= len(lesson.stops):
        problems.append(f"the link's stop={stop} is past the last stop of {name!r} ({len(lesson.stops)}); "
                        "its first stop is shown")
        k = 0
    if isinstance(position, LessonPosition):
        with position.lock:
            position.k, position.name = k, name
    return ({**lesson.stops[k].settings, **values},
            (gr.update(value=name), lessons.stop_markdown(lesson, k), gr.Accordion(open=True)))


_STOP_SHOWN = re.compile(r"\*\*(?P<title>.+?)\*\* · stop (?P<stop>\d+) of (?P<of>\d+):")


def stop_shown(text: str | None) -> tuple[str, int] | None:
    """The lesson (its name) and stop (0-based) that the page's lesson text (`lessons.stop_markdown`)
    shows, or None when it shows none (or names no lesson here, or is not text: an API caller's value)."""
    m = _STOP_SHOWN.match(text) if isinstance(text, str) else None
    if not m:
        return None
    for name in lessons.available():
        try:
            lesson = _lesson_named(name)
        except (KeyError, lessons.LessonError, OSError):
            continue
        if lesson.title == m["title"] and len(lesson.stops) == int(m["of"]) and 1 <= int(m["stop"]) <= len(lesson.stops):
            return name, int(m["stop"]) - 1
    return None


def resume(position, text: str | None) -> LessonPosition:
    """The session's place in the lesson for ◀ Back / Next ▶. It is the session's own record; where that
    has none but the page shows a stop (a link or a bundle opened it, and the record of it did not
    reach this session's state on a busy server), the page's stop, so that a clicker goes on from the
    stop in front of the class and never jumps back to the first."""
    position = position if isinstance(position, LessonPosition) else LessonPosition()
    with position.lock:
        if position.name is None and (shown := stop_shown(text)) is not None:
            position.name, position.k = shown
    return position


def restore_on_load(demo: gr.Blocks, tabs: gr.Tabs, restorers: list[Restorer], bar: LessonBar) -> None:
    """One load event that applies the link to every tab and marks the page ready; the lesson events."""
    ready = _ready_marker(demo)
    views = [tabs, *(o for r in restorers for o in r.outputs)]
    lesson_views = [bar.choice, bar.text, bar.box]

    def restore(position, request: gr.Request):
        params = dict(request.query_params) if request is not None else {}
        values, problems = url_state.read(params)
        values, lesson_out = _link_lesson(values, problems, position)
        # OPENING marks the page's first view: a tab may then set up what it shows before anything is
        # chosen (a lesson stop or a bundle that names another tab leaves this one as it is)
        out = _apply({**values, OPENING: True}, problems, restorers)
        if problems:
            gr.Warning(url_state.problem_text(problems))
        return (*out, *lesson_out, READY)

    demo.load(restore, bar.index, [*views, *lesson_views, ready], api_visibility="private", show_progress="hidden")
    from . import bundle_ui  # Export / Open bundle in the bar: a bundle restores through _apply too
    bundle_ui.wire(demo, tabs, restorers)

    def goto(name, position, delta, start=False):
        """Stop position + delta of the chosen lesson (the first stop with start): its view, its text and
        the chooser. With no lesson chosen and one lesson here, ◀ Back / Next ▶ (a clicker's first press)
        start that one at its first stop."""
        position = position if isinstance(position, LessonPosition) else LessonPosition()
        chosen = gr.skip()
        if not name:
            here = list(lessons.available())
            if len(here) != 1:
                raise gr.Error("Choose a lesson first (Lesson, above the tabs): "
                               + (", ".join(here) if here else "there are none in assets/lessons") + ".")
            name, start, chosen = here[0], True, gr.update(value=here[0])
        try:
            lesson = _lesson_named(name)
        except KeyError as e:
            raise gr.Error(f"There is no lesson {name!r}; lessons: {e.args[0] or 'none'}.") from None
        except (lessons.LessonError, OSError) as e:
            raise gr.Error(f"This lesson cannot be used: {e}") from None
        with position.lock:
            k = 0 if start else max(0, min(len(lesson.stops) - 1, position.k + int(delta)))
            position.k, position.name = k, name
        stop = lesson.stops[k]
        problems: list[str] = []
        out = _apply(stop.settings, problems, restorers)
        if problems:
            gr.Warning(f"Stop {k + 1} of {name}: " + "; ".join(problems))
        return (*out, lessons.stop_markdown(lesson, k), gr.Accordion(open=True), chosen)

    outputs = [*views, bar.text, bar.box, bar.choice]
    # one queue for the three, one at a time: quick clicks are answered in order (a stop is quick to apply),
    # so the last answer on screen is the stop the last click asked for
    quiet = dict(show_progress="hidden", concurrency_id="lesson", concurrency_limit=1)
    def choose(name, position):
        """The chooser: its lesson from the first stop. The lesson already running is left where it is
        (the chooser can report its value as chosen when it is drawn late, after a link set it)."""
        if isinstance(position, LessonPosition) and position.name == name and position.k >= 0:
            return (gr.skip(),) * len(outputs)
        return goto(name, position, 0, start=True)

    bar.choice.input(choose, [bar.choice, bar.index], outputs, api_name="lesson_start", **quiet)
    # trigger_mode "multiple": gradio's default for clicks drops a click made while the last one is pending.
    # The lesson comes from the session's position, not from the chooser: with none chosen, gradio refuses
    # the chooser's empty value before the handler could start the one lesson there.
    def step(position, text, delta):
        position = resume(position, text)
        return goto(position.name, position, delta)

    bar.next.click(lambda p, text: step(p, text, 1), [bar.index, bar.text], outputs, api_name="lesson_next",
                   trigger_mode="multiple", **quiet)
    bar.prev.click(lambda p, text: step(p, text, -1), [bar.index, bar.text], outputs, api_name="lesson_previous",
                   trigger_mode="multiple", **quiet)


def _ready_marker(demo: gr.Blocks) -> gr.HTML:
    for block in demo.blocks.values():
        if getattr(block, "elem_id", None) == "de-ready":
            return block
    raise LookupError("header() must be placed in the app before restore_on_load()")
