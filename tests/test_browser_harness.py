"""The browser tests' own harness: a wait reads elements that may not be drawn yet."""
import pytest

pytestmark = pytest.mark.browser


def test_a_wait_treats_an_element_not_yet_drawn_as_not_yet_and_other_errors_as_errors(page):
    page.evaluate("() => setTimeout(() => { const d = document.createElement('div'); d.id = 'late';"
                  " d.innerText = 'here'; document.body.appendChild(d); }, 1500)")
    page.wait_for_function("() => document.querySelector('#late').innerText.includes('here')")
    page.wait_for_function("n => document.querySelector('#late').innerText === n", arg="here")
    with pytest.raises(Exception, match="undefinedName"):
        page.wait_for_function("() => undefinedName + 1", timeout=5000)
