"""Lessons: the shipped lesson is valid and tells the whole story; a broken file names the file and the stop."""
import json

import pytest

from explorer.lecture import lessons


def test_the_shipped_lesson_has_at_least_eight_stops_in_order():
    found = lessons.available()
    assert "diffusion-in-50-minutes" in found
    lesson = lessons.load_lesson(found["diffusion-in-50-minutes"])
    assert len(lesson.stops) >= 8
    tabs = [s.settings.get("tab") for s in lesson.stops]
    assert tabs[0] == "forward" and "reverse" in tabs and "train" in tabs and tabs[-1] == "evaluate"
    assert all(s.text and s.equation for s in lesson.stops)
    md = lessons.stop_markdown(lesson, 1)
    assert "stop 2 of" in md and "$$" in md


def write(tmp_path, data, name="mine.json"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


GOOD_STOP = {"title": "A", "settings": {"tab": "forward", "t": 10}, "text": "Some words."}


@pytest.mark.parametrize("data, message", [
    ("{not json", "mine.json: not valid JSON"),
    ([], "mine.json: the file must hold one object"),
    ({"title": "x", "stops": []}, "mine.json: 'stops' must be a non-empty list"),
    ({"stops": [GOOD_STOP]}, "mine.json: 'title' must be a non-empty text"),
    ({"title": "x", "stops": [GOOD_STOP, {**GOOD_STOP, "settings": {"t": "-3"}}]},
     "mine.json, stop 2: the link's t='-3' is not allowed"),
    ({"title": "x", "stops": [{**GOOD_STOP, "settings": {"warp": 1}}]},
     "mine.json, stop 1: the link's setting 'warp' is not one this app knows"),
    ({"title": "x", "stops": [{**GOOD_STOP, "code": "import os"}]}, "mine.json, stop 1: unknown field(s) code"),
    ({"title": "x", "stops": [{**GOOD_STOP, "text": ""}]}, "mine.json, stop 1: 'text' must be a non-empty text"),
])
def test_a_broken_lesson_names_the_file_and_the_entry(tmp_path, data, message):
    with pytest.raises(lessons.LessonError) as info:
        lessons.load_lesson(write(tmp_path, data))
    assert message in str(info.value)


def test_a_lesson_of_ones_own_loads(tmp_path):
    p = write(tmp_path, {"title": "Mine", "stops": [GOOD_STOP]})
    lesson = lessons.load_lesson(p)
    assert lesson.title == "Mine" and lesson.stops[0].settings == {"tab": "forward", "t": 10}
    assert lessons.available(tmp_path) == {"mine": p}
