"""explorer.tabs.forward_handlers called directly, then the Forward tab's named API through gradio_client."""
import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from core.forward import q_sample
from core.schedules import make_schedule
from explorer import render
from explorer.inputs import Input, from_dataset, from_image_file
from explorer.tabs import forward_handlers as fw

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "images"


@pytest.fixture(scope="module")
def photo():
    return from_image_file(ASSETS / "astronaut.jpg", "astronaut")


# --- the slider's fast path -----------------------------------------------------------------

def test_noisy_is_the_closed_form_with_the_seeded_noise(photo):
    img, plot, numbers = fw.noisy(photo, "cosine", 500, 123, 7)
    s = make_schedule("cosine", 500)
    eps = torch.randn(photo.shape, generator=torch.Generator().manual_seed(7))
    expected = s.alpha_bar[123].sqrt() * photo.x0 + (1 - s.alpha_bar[123]).sqrt() * eps
    assert np.array_equal(img, render.image(expected.float()[0]))
    assert isinstance(plot, type(gr.skip()))
    assert f"{float(s.alpha_bar[123].sqrt()):.4f}" in numbers and f"{float(s.snr[123]):.4g}" in numbers


def test_t_zero_shows_the_clean_data(photo):
    img, _, numbers = fw.noisy(photo, "linear", 1000, 0, 0)
    assert np.array_equal(img, render.image(photo.x0[0]))
    assert "SNR = ∞" in numbers


def test_same_seed_same_noise_other_seed_other_noise(photo):
    a = fw.noisy(photo, "linear", 1000, 400, 3)[0]
    b = fw.noisy(photo, "linear", 1000, 400, 3)[0]
    c = fw.noisy(photo, "linear", 1000, 400, 4)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert fw.noise_for(3, (1, 2)) is fw.noise_for(3, (1, 2))  # one draw, cached


def test_noisy_skips_work_when_its_view_is_hidden(photo):
    assert all(isinstance(o, type(gr.skip())) for o in fw.noisy(photo, "linear", 1000, 10, 0, active="compare"))


@pytest.mark.parametrize("args,message", [
    (("linear", 1000, 1001, 0), "t must be a whole number between 0 and T=1000, got 1001"),
    (("linear", 1000, 2.5, 0), "t must be a whole number"),
    (("linear", 5000, 10, 0), "T must be a whole number between 10 and 2000"),
    (("linear", 1000, 10, "abc"), "seed must be a whole number"),
    (("warp", 1000, 10, 0), "unknown schedule 'warp'"),
    (("linear", 1000, 10, -1), "seed must be a whole number"),
    (("linear", 1000, 10, None), "seed must be a whole number"),
])
def test_bad_controls_give_clear_errors(photo, args, message):
    with pytest.raises(gr.Error, match=message):
        fw.noisy(photo, *args)


def test_points_and_signals_get_figures():
    pts = from_dataset("swiss_roll")
    img, fig, _ = fw.noisy(pts, "linear", 1000, 1000, 0)
    assert isinstance(img, type(gr.skip()))
    d = fig.to_plotly()
    assert len(d.data) == 2 and d.layout.title.text == "x_t at t = 1000"
    sig = from_dataset("signals", 2)
    _, fig, _ = fw.noisy(sig, "linear", 1000, 10, 0)
    assert len(fig.to_dict()["data"]) == 2  # x_0 faint behind x_t


# --- the other views ------------------------------------------------------------------------

def test_t_views_fill_only_the_visible_sub_tab(photo):
    skip = type(gr.skip())
    main = fw.t_views(photo, "linear", 1000, 100, 0, ["linear"], "main")
    assert len(main) == 2 + 7 + 2
    assert not isinstance(main[0], skip) and all(isinstance(o, skip) for o in main[2:])
    enc = fw.t_views(photo, "linear", 1000, 100, 0, ["linear"], "encoding")
    assert all(isinstance(o, skip) for o in enc[:9]) and enc[9].to_dict()["layout"]["title"]["text"].startswith(
        "e(t) for t = 100")


def test_while_dragging_an_images_histogram_comes_with_its_picture_and_a_points_histogram_with_the_event(photo):
    skip = type(gr.skip())
    live = fw.t_views(photo, "linear", 1000, 100, 0, ["linear"], "main", live=True)
    assert isinstance(live[0], skip) and isinstance(live[1], skip)  # the frame route sends both to the page
    pts = from_dataset("moons")
    live = fw.t_views(pts, "linear", 1000, 100, 0, ["linear"], "main", live=True)
    assert isinstance(live[0], skip) and live[1].to_dict()["layout"]["title"]["text"] == fw.histogram_title(100)
    # the route cannot answer: the page asks for the image's histogram through its own event
    fig = fw.x_t_histogram(photo, "linear", 1000, 100, 0, "main")
    assert fig.to_dict() == fw.t_views(photo, "linear", 1000, 100, 0, [], "main")[1].to_dict()
    assert isinstance(fw.x_t_histogram(pts, "linear", 1000, 100, 0, "main"), skip)
    assert isinstance(fw.x_t_histogram(photo, "linear", 1000, 100, 0, "compare"), skip)
    with pytest.raises(gr.Error, match="t must be a whole number between 0 and T=1000"):
        fw.x_t_histogram(photo, "linear", 1000, 1001, 0, "main")


def test_compare_uses_the_same_noise_for_every_schedule(photo):
    out = fw.compare(photo, ["linear", "cosine"], 1000, 300, 5)
    assert len(out) == 7
    eps = fw.noise_for(5, photo.shape)
    for i, name in enumerate(["linear", "cosine"]):
        s = make_schedule(name, 1000)
        assert np.array_equal(out[2 * i]["value"], render.image(q_sample(s, photo.x0, 300, eps)[0]))
        assert out[2 * i]["label"] == name
    assert out[4] == gr.update(visible=False)  # the unused third slot is hidden
    assert len(out[6].to_dict()["data"]) == 2 * 4
    assert fw.compare(photo, [], 1000, 300, 5)[-1] is None
    with pytest.warns(UserWarning, match="Compare up to 3"):
        assert len(fw.check_compare(["linear", "cosine", "sigmoid", "quadratic"])) == 3


def test_refresh_fills_the_visible_sub_tab_and_clears_the_chain(photo):
    skip = type(gr.skip())
    out = fw.refresh(photo, "sigmoid", 200, 50, 1, ["linear"], "main")
    assert len(out) == fw.N_MAIN + 7 + 2 + 2 + 7
    assert out[0]["label"] == "x₀: astronaut" and out[4]["label"] == "noise ε (seed 1)"
    assert 'data-frames="de-forward/' in out[9]  # where the page fetches x_t as the slider moves
    assert all(isinstance(o, skip) for o in out[10:21])  # other sub-tabs catch up when opened
    assert out[-1] is None and out[-2] == fw.text.CHAIN_IDLE  # stale chain results cleared
    film = fw.refresh(photo, "sigmoid", 200, 50, 1, ["linear"], "film")
    assert isinstance(film[0], skip) and film[17]["visible"]
    assert film[17]["value"].shape[1] == fw.FILM_FRAMES * (fw.FILM_SIZE + 6) + 6
    enc = fw.refresh(photo, "sigmoid", 200, 50, 1, ["linear"], "encoding")
    assert enc[19].to_dict()["layout"]["title"]["text"].startswith("e(t) for t = 50")


def test_sub_tab_handlers(photo):
    main = fw.noisy_sample(photo, "linear", 100, 100, 0)
    assert len(main) == fw.N_MAIN and main[2]["visible"]
    img, plot = fw.filmstrip(photo, "linear", 100, 0)
    assert img["visible"] and not plot["visible"]
    bars, heat = fw.step_encoding(100, 30)
    assert heat.to_dict()["layout"]["shapes"][0]["y0"] == 30
    with pytest.raises(gr.Error, match="t must be a whole number between 0 and T=100"):
        fw.step_encoding(100, 101)


def test_filmstrip_of_an_image_is_film_on_a_black_ground_with_light_captions(photo):
    strip = fw.filmstrip_value(photo, make_schedule("linear", 100), fw.noise_for(0, photo.shape))
    assert strip.shape[1] == fw.FILM_FRAMES * (fw.FILM_SIZE + 6) + 6  # frames side by side, 6 px apart
    assert (strip[:6] == 0).all() and (strip[:, :6] == 0).all()  # the ground: black, never a white band
    band = strip[6 + fw.FILM_SIZE + 6:]  # the captions under the frames: light ink on black
    assert band.max() > 200 and np.median(band) == 0


def test_filmstrip_for_points_is_panels():
    moons = from_dataset("moons")
    fig = fw.filmstrip_value(moons, make_schedule("linear", 100), fw.noise_for(0, moons.shape))
    assert len(fig.to_dict()["layout"]["annotations"]) == fw.FILM_FRAMES


def test_chain_reaches_the_closed_form_distribution(photo):
    frames = list(fw.chain(photo, "linear", 1000, 300, 0))
    assert frames[0][2]["label"] == "closed form q(x_t | x_0)"
    assert len(frames) == 1 + (fw.CHAIN_FRAMES - 1) + 1
    final = frames[-1]
    hist, stats, key = final[4], final[5], final[6]
    names = [t["name"] for t in hist.to_dict()["data"]]
    assert names == ["chain", "closed form", "N(0, 1)"]
    # 196,608 values: the implied noise of both must be N(0, 1) to within sampling error.
    rows = {line.split("|")[1].strip(): line.split("|")[2:6] for line in stats.splitlines()[2:4]}
    for name in ("chain", "closed form"):
        mean_x, std_x, mean_e, std_e = (float(v) for v in rows[name])
        assert abs(mean_e) < 0.01 and abs(std_e - 1) < 0.01
    assert abs(float(rows["chain"][1]) - float(rows["closed form"][1])) < 0.01  # same std of x_t
    again = list(fw.chain(photo, "linear", 1000, 300, 0, last_run=key))
    assert again == [(gr.skip(),) * 7]  # nothing to redo


def test_chain_at_t_zero_explains_itself(photo):
    (out,) = list(fw.chain(photo, "linear", 1000, 0, 0))
    assert out[5] == fw.text.CHAIN_AT_ZERO


def test_encoding_comes_from_core():
    from core.nets.embeddings import timestep_embedding

    fig = fw.encoding_bars(37)
    assert fig.to_dict()["data"][0]["y"] == render._num(timestep_embedding(37, fw.EMB_DIM))


# --- input selection ------------------------------------------------------------------------

def test_select_input_for_each_source(app_settings):
    photos = {"astronaut": ASSETS / "astronaut.jpg"}
    select = fw.make_input_selector(photos)
    inp, *_ = select("Photo", "astronaut", "digits", 0, None)
    assert inp.kind == "image" and inp.shape == (1, 3, 256, 256)
    inp, photo_u, data_u, index_u, upload_u, caption = select("Dataset", "astronaut", "digits", 9, None)
    assert inp.kind == "image" and inp.shape == (1, 1, 8, 8)
    assert index_u["visible"] and index_u["maximum"] == 1796
    assert data_u["visible"] and not photo_u["visible"] and not upload_u["visible"]
    assert caption.startswith("**digits #9")
    inp, *_ , index_u, _, _ = select("Dataset", "astronaut", "rings", 0, None)
    assert inp.kind == "points" and not index_u["visible"]
    mine = Input("image", torch.zeros(1, 3, 4, 4), "mine")
    assert select("Upload", "astronaut", "digits", 0, mine)[0] is mine
    assert isinstance(select("Upload", "astronaut", "digits", 0, None)[0], type(gr.skip()))
    with pytest.raises(gr.Error, match="unknown photo"):
        select("Photo", "nope", "digits", 0, None)
    assert select("Dataset", "astronaut", "digits", 5000, None)[0].label.startswith("digits #1796")  # clamped


def test_upload_converts_or_refuses(tmp_path):
    Image.new("LA", (600, 300), (90, 255)).save(tmp_path / "grey.png")
    inp, source = fw.upload(str(tmp_path / "grey.png"))
    assert source == "Upload" and inp.shape == (1, 3, 128, 256)
    (tmp_path / "data.bin").write_bytes(b"\0\1\2" * 100)
    with pytest.raises(gr.Error, match="not an image"):
        fw.upload(str(tmp_path / "data.bin"))
    with pytest.raises(gr.Error, match="no file"):
        fw.upload(None)


def test_changing_T_keeps_t_at_the_same_fraction():
    update, T, t = fw.set_T(500, 250, 1000)
    assert update["value"] == 125 == t and update["maximum"] == 500 and T == 500
    with pytest.raises(gr.Error, match="T must be a whole number between"):
        fw.set_T(5, 1, 1000)


# --- through the API ------------------------------------------------------------------------

def test_api_names_cover_every_view(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/noisy", "/t_views", "/refresh", "/compare", "/chain", "/upload", "/select_input", "/noisy_sample",
            "/filmstrip", "/step_encoding"} <= names


def test_api_drives_the_views(client):
    img, _, numbers = client.predict("linear", 1000, 500, 0, api_name="/noisy")
    assert Image.open(img).size == (256, 256)
    assert "x<sub>500</sub>" in numbers
    # a dataset input chosen through the API is kept in this client's session state
    client.predict("Dataset", "astronaut", "digits", 3, api_name="/select_input")
    img, _, _ = client.predict("linear", 1000, 500, 0, api_name="/noisy")
    assert Image.open(img).size == (256, 256)  # an 8x8 digit, enlarged 32 times
    assert len(np.unique(np.asarray(Image.open(img).convert("L"))[::32, ::32])) > 4
    film, _ = client.predict("linear", 100, 0, api_name="/filmstrip")
    assert Image.open(film["value"]).size[0] == fw.FILM_FRAMES * (fw.FILM_SIZE + 6) + 6
    bars, _ = client.predict(100, 30, api_name="/step_encoding")
    assert json.loads(bars["plot"])["layout"]["title"]["text"].startswith("e(t) for t = 30")


def test_api_reports_bad_input(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="t must be a whole number between 0 and T=100"):
        client.predict("linear", 100, 101, 0, api_name="/noisy")


# --- restoring a link ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def restore():
    photos = {"astronaut": ASSETS / "astronaut.jpg", "camera": ASSETS / "camera.jpg"}
    return fw.make_restorer(photos, ["swiss_roll", "digits"], fw.make_input_selector(photos))


def test_a_link_restores_the_same_picture(restore):
    problems = []
    out = restore({"tab": "forward", "source": "photo", "input": "camera", "schedule": "cosine", "T": 500,
                   "t": 123, "seed": 7}, problems)
    assert problems == [] and len(out) == 13 + fw.N_MAIN
    source, photo, dataset, index, upload, note, inp, schedule, T, t, seed, last_T, t_copy, *views = out
    assert source["value"] == "Photo" and photo["value"] == "camera" and photo["visible"] is True
    assert schedule["value"] == "cosine" and T["value"] == 500 and t["value"] == 123 and t["maximum"] == 500
    assert seed["value"] == 7 and (last_T, t_copy) == (500, 123) and inp.label == "camera"
    want = fw.noisy_sample(from_image_file(ASSETS / "camera.jpg", "camera"), "cosine", 500, 123, 7)
    assert np.array_equal(views[2]["value"], want[2]["value"])  # x_t, pixel for pixel
    assert views[6] == want[6]  # the numbers


def test_a_dataset_link_and_bad_values_fall_back_with_messages(restore):
    problems = []
    out = restore({"source": "dataset", "input": "digits", "index": 3, "t": 10}, problems)
    assert problems == [] and out[2]["value"] == "digits" and out[6].label.startswith("digits #3")
    problems = []
    out = restore({"input": "moon", "T": 1005, "t": 900}, problems)
    assert out[1]["value"] == "astronaut" and out[8]["value"] == 1000 and out[9]["value"] == 900
    assert any("there is no photo 'moon'" in p for p in problems)
    assert any("T=1005 is not one the T slider offers" in p for p in problems)
    problems = []
    out = restore({"t": 700, "T": 500}, problems)
    assert out[9]["value"] == 125 and problems == ["the link's t=700 is past T=500; t=125 is used"]
    problems = []
    out = restore({"source": "upload"}, problems)
    assert out[0]["value"] == "Photo" and "an uploaded image does not travel in a link" in problems[0]


def test_a_link_for_another_tab_leaves_forward_alone(restore):
    assert all(o == gr.skip() for o in restore({"tab": "reverse", "seed": 3}, []))
    assert all(o == gr.skip() for o in restore({"present": True}, []))
