"""Lessons: a sequence of stops, each a view of the app with a few sentences and an equation.

A lesson is a plain JSON file in assets/lessons/ (a lecturer can write their own):

    {"title": "...", "stops": [{"title": "...", "settings": {"tab": "forward", "t": 0},
                                "text": "two to four sentences", "equation": "x_t = ..."}, ...]}

`settings` uses the names a link uses (explorer.lecture.url_state), so a stop restores its view
through the same function as a link. A broken file raises LessonError naming the file and the stop.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import url_state

LESSONS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "lessons"
MAX_FILE_BYTES = 256 * 1024


class LessonError(ValueError):
    """A lesson file that cannot be used: the message names the file and the entry."""


@dataclass(frozen=True)
class Stop:
    title: str
    settings: dict
    text: str
    equation: str = ""


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    stops: tuple[Stop, ...]


def _text(where: str, entry: dict, key: str, required: bool = True) -> str:
    value = entry.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise LessonError(f"{where}: '{key}' must be {'a non-empty' if required else 'a'} text")
    return value


def load_lesson(path: str | Path) -> Lesson:
    """Read and check one lesson file."""
    path = Path(path)
    name = path.name
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LessonError(f"{name}: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LessonError(f"{name}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise LessonError(f"{name}: the file must hold one object with 'title' and 'stops'")
    title = _text(name, data, "title")
    stops = data.get("stops")
    if not isinstance(stops, list) or not stops:
        raise LessonError(f"{name}: 'stops' must be a non-empty list")
    out = []
    for k, entry in enumerate(stops, start=1):
        where = f"{name}, stop {k}"
        if not isinstance(entry, dict):
            raise LessonError(f"{where}: each stop must be an object with title, settings, text")
        unknown = set(entry) - {"title", "settings", "text", "equation"}
        if unknown:
            raise LessonError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                              "allowed: title, settings, text, equation")
        settings = entry.get("settings", {})
        if not isinstance(settings, dict):
            raise LessonError(f"{where}: 'settings' must be an object of link settings")
        values, problems = url_state.read({str(key): str(v) for key, v in settings.items()})
        if problems:
            raise LessonError(f"{where}: {'; '.join(problems)}")
        out.append(Stop(_text(where, entry, "title"), values, _text(where, entry, "text"),
                        _text(where, entry, "equation", required=False)))
    return Lesson(path.stem, title, tuple(out))


def available(folder: Path = LESSONS_DIR) -> dict[str, Path]:
    """Lesson files by name (file stem), sorted."""
    return {p.stem: p for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def stop_markdown(lesson: Lesson, k: int) -> str:
    """The text shown for stop k (0-based): its place in the lesson, title, text and equation."""
    stop = lesson.stops[k]
    md = f"**{lesson.title}** · stop {k + 1} of {len(lesson.stops)}: **{stop.title}**\n\n{stop.text}"
    if stop.equation:
        md += f"\n\n$${stop.equation}$$"
    return md
