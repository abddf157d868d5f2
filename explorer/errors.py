"""User errors: what a person sent is checked against its control, and every refusal is a message.

`guard(demo)` is applied once to the built app. Before Gradio preprocesses an event's inputs, each
value is checked against the control it claims to be (a slider's number, a checkbox's true/false, a
dropdown's choices) and refused with the control's name and what it allows; Gradio's own checks
would otherwise fail with a bare "Error" ('<' between str and int, NaN to int). Every event function
is wrapped so that the errors a user causes (gr.Error, and the ValueError that core and the handlers
raise with messages written for people) reach the page as that message, with one short log line and
no traceback: tracebacks in the server log are kept for real bugs.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import types
from typing import Callable

import gradio as gr

from .wrapping import within

log = logging.getLogger(__name__)

BIG = 2**53  # the largest whole number a float (and so a browser) holds exactly: the bound of unbounded numbers
TOO_LONG = 60  # characters of a refused value quoted back


_HANDLER_RANGES: dict[int, str] = {}  # id of a slider whose range its handler checks -> that range in words


def range_in_handler(slider: gr.Slider, allowed: str) -> gr.Slider:
    """Leave this slider's range to its handler, because it depends on another control (t on T).

    Gradio checks a slider's value against the bounds a session started with, or the ones an update
    last set, so an API call with T=2000 and t=1500 would be refused by t's initial maximum (1000), and a
    value the page sent before an update landed by the update's. The value is still checked to be a
    finite number here. allowed: the range in words ("from 0 to T"). Returns the slider.
    """
    _HANDLER_RANGES[slider._id] = allowed
    _unbound(slider)
    slider.api_info = lambda: {"type": "number", "description": f"numeric value {allowed}"}
    return slider


def _unbound(slider) -> None:
    # an instance attribute: a session's updated copy of the slider is a new object, so guard_preprocess
    # sets it again on that copy
    slider.preprocess = types.MethodType(_preprocess_unbounded, slider)


def _preprocess_unbounded(self, payload: float) -> float:
    return gr.Number.round_to_precision(payload, self.precision)


def refusal(message: str, where: str = "") -> gr.Error:
    """A gr.Error for something the user sent: shown as it is, one log line, no traceback."""
    log.info("refused %s: %s", where or "a call", message)
    return gr.Error(message, print_exception=False)


# --- what each control accepts ------------------------------------------------------------------

def name_of(block) -> str:
    """The control's name as the page shows it (its label without the parenthesised help)."""
    label = getattr(block, "label", None)
    if label:
        return str(label).split("  (")[0].split(" (")[0].strip() or str(label)
    return getattr(block, "elem_id", None) or type(block).__name__


def shown(value) -> str:
    text = "nothing" if value is None else repr(value)
    return text if len(text) <= TOO_LONG else text[:TOO_LONG] + "…"


def _number_text(x) -> str:
    return f"{x:,}" if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1e4) \
        else f"{x:g}"


def _whole_only(block) -> bool:
    if isinstance(block, gr.Number):
        return block.precision == 0
    step, lo = getattr(block, "step", None), getattr(block, "minimum", None) or 0
    return step is not None and float(step).is_integer() and float(lo).is_integer()


def number_problem(block, value, ranged: str | None = None) -> str | None:
    """Why `value` is no number for this slider or number box (None when it is fine).

    ranged: the range in words where the handler checks it (`range_in_handler`; found by the block's id
    when not given)."""
    whole = _whole_only(block)
    kind = "a whole number" if whole else "a number"
    lo, hi = block.minimum, block.maximum
    ranged = ranged if ranged is not None else _HANDLER_RANGES.get(block._id)
    if ranged is not None:
        lo, hi = None, None  # the handler checks the range, which depends on other controls
        allowed = f"{kind} {ranged}"
    else:
        lo_text = _number_text(lo if lo is not None else -BIG)
        hi_text = _number_text(hi if hi is not None else BIG)
        allowed = f"{kind} from {lo_text} to {hi_text}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if ok:
        ok = -BIG <= value <= BIG and (lo is None or value >= lo) and (hi is None or value <= hi)
    if ok and whole:
        ok = float(value).is_integer()
    return None if ok else f"{name_of(block)} must be {allowed}, got {shown(value)}"


def choice_values(block) -> list:
    return [value for _, value in (block.choices or [])]


def _choices_text(values: list) -> str:
    return ", ".join(repr(v) for v in values) or "none"


def choice_problem(block, value) -> str | None:
    """Why `value` is not a choice of this dropdown, radio or checkbox group (None when it is)."""
    values = choice_values(block)
    name = name_of(block)
    many = isinstance(block, gr.CheckboxGroup) or getattr(block, "multiselect", False)
    if many:
        if not isinstance(value, list) or any(not isinstance(v, (str, int, float)) or v not in values
                                              for v in value):
            return f"{name} must be a list of choices from {_choices_text(values)}, got {shown(value)}"
        return None
    if getattr(block, "allow_custom_value", False):
        if value is None or isinstance(value, str):
            return None
        return f"{name} must be a name (text), got {shown(value)}"
    if value is None and getattr(block, "value", None) is None:
        return None  # a control that starts empty may be sent empty
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value in values:
        return None
    return f"{name} must be one of {_choices_text(values)}, got {shown(value)}"


def file_problem(block, value) -> str | None:
    """Why `value` is not what a file or image control sends (None when it is, or when it is empty)."""
    if value is None:
        return None
    try:
        block.data_model.model_validate(value)
    except Exception:
        what = "a drawing (the image editor's value)" if isinstance(block, gr.ImageEditor) \
            else "a file uploaded to this app"
        return f"{name_of(block)} must be {what}, got {shown(value)}"
    return None


def problem(block, value, ranged: str | None = None) -> str | None:
    """Why `value` cannot be what control `block` sends, in words; None when it can. ranged: as for
    `number_problem`."""
    if isinstance(block, (gr.Slider, gr.Number)):
        return number_problem(block, value, ranged)
    if isinstance(block, gr.Checkbox):
        return None if isinstance(value, bool) else f"{name_of(block)} must be true or false, got {shown(value)}"
    if isinstance(block, (gr.Dropdown, gr.Radio, gr.CheckboxGroup)):
        return choice_problem(block, value)
    if isinstance(block, gr.Textbox):
        return None if value is None or isinstance(value, str) else \
            f"{name_of(block)} must be text, got {shown(value)}"
    if getattr(block, "data_model", None) is not None:
        return file_problem(block, value)
    return None


# --- the app-wide guard -------------------------------------------------------------------------

def _endpoint(block_fn) -> str:
    return block_fn.api_name or block_fn.name or "an event"


def check_inputs(block_fn, inputs: list, state) -> None:
    """Refuse the first input that its control cannot have sent (gr.Error with the control's name)."""
    for i, block in enumerate(block_fn.inputs):
        if block.stateful or i >= len(inputs) or i in block_fn.component_prop_inputs:
            continue
        ranged = _HANDLER_RANGES.get(block._id)
        if state is not None and block._id in state:
            # this session's copy: its choices and bounds may have been updated. Gradio makes it anew at each
            # update, with an id of its own, so a range left to the handler is found by the control's id.
            block = state[block._id]
            if ranged is not None:
                _unbound(block)
        message = problem(block, inputs[i], ranged)
        if message:
            raise refusal(message, _endpoint(block_fn))


def guard_preprocess(demo: gr.Blocks) -> None:
    """Check every event's raw inputs before Gradio preprocesses them; say what a failed preprocess means."""
    if getattr(demo, "inputs_guarded", False):
        return
    original = demo.preprocess_data

    @functools.wraps(original)
    async def preprocess_data(block_fn, inputs, state, explicit_call: bool = False):
        if len(inputs) < len(block_fn.inputs):
            # a call that leaves out trailing inputs (written before an endpoint gained one) gets their
            # controls' defaults, as gradio_client fills them in
            inputs = [*inputs, *(None if b.stateful else getattr(b, "value", None)
                                 for b in block_fn.inputs[len(inputs):])]
        check_inputs(block_fn, inputs, state)
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except gr.Error as e:
            e.print_exception = False
            raise
        except Exception as e:  # a value of the right shape that still cannot be read (a file outside the app)
            names = ", ".join(name_of(b) for b in block_fn.inputs if not b.stateful) or "none"
            log.info("refused %s: %s: %s", _endpoint(block_fn), type(e).__name__, e)
            raise refusal(f"The values sent to {_endpoint(block_fn)} could not be read as its inputs "
                          f"({names}); send what each control holds.") from None

    demo.preprocess_data = preprocess_data
    demo.inputs_guarded = True


@contextlib.contextmanager
def said_plainly(where: str = ""):
    """Inside: a gr.Error keeps its message but loses its traceback; a ValueError becomes a gr.Error."""
    try:
        yield
    except gr.Error as e:
        e.print_exception = False
        log.info("refused %s: %s", where or "a call", e.message)
        raise
    except (ValueError, OverflowError) as e:  # core's and the handlers' messages are written for people
        raise refusal(str(e), where) from e


def user_facing(fn: Callable, where: str = "") -> Callable:
    """`fn` with the errors a user causes said plainly (see `said_plainly`); sync, async or generator."""
    wrapper = within(fn, lambda: said_plainly(where))
    wrapper.__user_facing__ = True
    return wrapper


def guard(demo: gr.Blocks) -> gr.Blocks:
    """Apply both halves to a built app: inputs checked first, user errors said plainly. Returns `demo`."""
    for block_fn in demo.fns.values():
        if block_fn.fn is not None and not getattr(block_fn.fn, "__user_facing__", False):
            block_fn.fn = user_facing(block_fn.fn, _endpoint(block_fn))
    guard_preprocess(demo)
    return demo
