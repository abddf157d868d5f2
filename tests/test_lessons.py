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


def test_a_link_names_a_lesson_stop_and_its_own_settings_win():
    from explorer.lecture import LessonPosition, _link_lesson

    position = LessonPosition()
    problems = []
    values, (choice, text, box) = _link_lesson({"lesson": "diffusion-in-50-minutes", "stop": 4, "t": 300,
                                                "present": True}, problems, position)
    assert problems == [] and position.k == 3  # Next goes on from stop 4
    assert values["view"] == "compare" and values["schedule"] == "cosine"  # the stop's own settings
    assert values["t"] == 300 and values["present"] is True  # the link's, over the stop's t=500
    assert choice["value"] == "diffusion-in-50-minutes" and "stop 4 of 12" in text
    assert "lesson" not in values and "stop" not in values


@pytest.mark.parametrize("link, message", [
    ({"lesson": "no-such-lesson", "stop": 2}, "there is no lesson 'no-such-lesson' here (lessons: "),
    ({"lesson": "diffusion-in-50-minutes", "stop": 99}, "stop=99 is past the last stop of 'diffusion-in-50-minutes' (12)"),
    ({"stop": 3}, "stop=3 names no lesson (add lesson=NAME)"),
])
def test_a_link_to_a_lesson_that_cannot_be_used_says_why(link, message):
    from explorer.lecture import LessonPosition, _link_lesson

    position, problems = LessonPosition(), []
    values, out = _link_lesson({**link, "t": 10}, problems, position)
    assert len(problems) == 1 and message in problems[0]
    if link.get("stop") == 99:  # a known lesson: its first stop
        assert position.k == 0 and "stop 1 of 12" in out[1]
    else:
        assert values == {"t": 10} and position.k == -1


def test_lesson_and_stop_in_a_link_are_checked_like_every_setting():
    from explorer.lecture import url_state

    good, problems = url_state.read({"lesson": "diffusion-in-50-minutes", "stop": "4"})
    assert good == {"lesson": "diffusion-in-50-minutes", "stop": 4} and problems == []
    good, problems = url_state.read({"lesson": "../secrets", "stop": "0"})
    assert good == {} and len(problems) == 2


def test_the_stop_on_the_page_is_read_back_from_its_text():
    from explorer.lecture import stop_shown

    lesson = lessons.load_lesson(lessons.available()["diffusion-in-50-minutes"])
    for k in (0, 3, len(lesson.stops) - 1):
        assert stop_shown(lessons.stop_markdown(lesson, k)) == ("diffusion-in-50-minutes", k)
    assert stop_shown("") is None and stop_shown(None) is None and stop_shown(float("nan")) is None
    assert stop_shown("**Some other lesson** · stop 2 of 12: **x**") is None  # not a lesson here
    assert stop_shown(f"**{lesson.title}** · stop 2 of 99: **x**") is None      # another version of it


def test_a_clicker_goes_on_from_the_stop_shown_when_the_session_has_no_record_of_it():
    """Next ▶ after a link opened stop 4: from the session's own record; where the record is missing,
    from the stop the page shows (before, it fell back to starting the lesson at stop 1)."""
    from explorer.lecture import LessonPosition, resume

    lesson = lessons.load_lesson(lessons.available()["diffusion-in-50-minutes"])
    shown = lessons.stop_markdown(lesson, 3)
    lost = resume(LessonPosition(), shown)
    assert (lost.name, lost.k) == ("diffusion-in-50-minutes", 3)
    assert (resume(None, shown).name, resume(None, shown).k) == ("diffusion-in-50-minutes", 3)
    kept = LessonPosition()
    kept.name, kept.k = "diffusion-in-50-minutes", 6  # quick clicks already moved on: the record wins
    assert resume(kept, shown) is kept and kept.k == 6
    nothing = resume(LessonPosition(), "")
    assert nothing.name is None and nothing.k == -1  # no lesson: a clicker's first press starts the one here
