"""explorer.widgets: the DataView pair and error mapping."""
import gradio as gr
import numpy as np
import pytest
import torch

from explorer import render
from explorer.widgets import DataView, user_errors, user_errors_gen


def test_show_puts_images_and_figures_in_the_right_component():
    img = np.zeros((4, 4, 3), np.uint8)
    a, b = DataView.show("image", img, label="x")
    assert a["visible"] and a["label"] == "x" and a["value"] is img and b == gr.update(visible=False)
    fig = render.scatter(torch.zeros(3, 2))
    a, b = DataView.show("points", fig, label="cloud")
    assert a == gr.update(visible=False) and b["visible"] and b["value"] is fig
    assert fig.layout["title"]["text"] == "cloud"  # figures carry their label as a title
    assert DataView.value_of(a, b) is fig and DataView.value_of(*DataView.show("image", img)) is img


def test_fast_updates_skip_the_hidden_component():
    img = np.zeros((2, 2), np.uint8)
    a, b = DataView.fast("image", img)
    assert a is img and isinstance(b, type(gr.skip()))
    fig = render.signals(torch.zeros(1, 1, 8))
    a, b = DataView.fast("signal", fig, title="x_t at t = 3")
    assert isinstance(a, type(gr.skip())) and b.layout["title"]["text"] == "x_t at t = 3"


def test_value_errors_reach_the_user_other_errors_stay_bugs():
    @user_errors
    def bad(kind):
        raise {"value": ValueError("t must be between 0 and T=10, got 11"), "type": TypeError("bug")}[kind]

    with pytest.raises(gr.Error, match="T=10, got 11"):
        bad("value")
    with pytest.raises(TypeError):
        bad("type")

    @user_errors_gen
    def stream():
        yield 1
        raise ValueError("stopped: reason")

    gen = stream()
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="stopped: reason"):
        next(gen)
