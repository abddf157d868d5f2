"""explorer.lecture.url_state: a link's settings are read and checked; bad ones are named, never raised."""
import pytest

from explorer.lecture import url_state


def test_good_values_are_read_with_their_types():
    good, problems = url_state.read({"tab": "reverse", "present": "1", "t": "250", "T": "1000", "eta": "0.5",
                                     "schedule": "cosine", "checkpoint": "digits", "source": "dataset"})
    assert problems == []
    assert good == {"tab": "reverse", "present": True, "t": 250, "T": 1000, "eta": 0.5, "schedule": "cosine",
                    "checkpoint": "digits", "source": "dataset"}
    assert url_state.read({"steps": "50.0"})[0] == {"steps": 50}  # sliders send floats


@pytest.mark.parametrize("key, text, allowed", [
    ("tab", "settings", "one of forward, reverse, train, evaluate"),
    ("t", "-1", "a whole number from 0 to"),
    ("t", "2.5", "a whole number from 0 to"),
    ("t", "nan", "a whole number from 0 to"),
    ("seed", "1e30", "a whole number from 0 to 2147483647"),
    ("eta", "1.5", "a number from 0 to 1"),
    ("schedule", "exponential", "one of linear, cosine, sigmoid, quadratic"),
    ("present", "yes", "0 or 1"),
    ("checkpoint", "../../etc/passwd", "a name from the list (no path)"),
    ("input", ".hidden", "a name from the list (no path)"),
    ("input", "x" * 300, "a name from the list (no path)"),
])
def test_bad_values_fall_back_with_a_message_that_says_what_is_allowed(key, text, allowed):
    good, problems = url_state.read({key: text, "t": "10"} if key != "t" else {key: text})
    assert key not in good
    assert len(problems) == 1 and f"the link's {key}=" in problems[0] and allowed in problems[0]
    assert "default is used" in problems[0]


def test_unknown_settings_are_named_and_ignored():
    good, problems = url_state.read({"colour": "red", "t": "5"})
    assert good == {"t": 5}
    assert problems == ["the link's setting 'colour' is not one this app knows; ignored"]
    assert url_state.problem_text(problems).startswith("This link has settings that cannot be used: the link's")


def test_gradios_own_page_settings_are_left_to_gradio_without_a_message():
    good, problems = url_state.read({"__theme": "dark", "t": "5"})
    assert good == {"t": 5} and problems == []


def test_an_inner_view_is_read_only_for_the_tab_it_belongs_to():
    values, problems = url_state.read({"tab": "evaluate", "view": "quiz"})
    assert values == {"tab": "evaluate", "view": "quiz"} and problems == []
    values, problems = url_state.read({"view": "compare"})  # no tab: the first tab, forward
    assert values == {"view": "compare"} and problems == []
    values, problems = url_state.read({"tab": "reverse", "view": "quiz"})
    assert values == {"tab": "reverse"}
    assert problems == ["the link's view='quiz' is not a view of the reverse tab (its views: none); ignored"]
    values, problems = url_state.read({"tab": "forward", "view": "bogus"})
    assert values == {"tab": "forward"} and "view='bogus' is not allowed (one of main, compare" in problems[0]
