"""explorer.raster: numpy drawing of dots, segments and arrows, checked pixel by pixel."""
import numpy as np

from explorer import raster

RED = (255, 0, 0)
BOX = (0, 0, 19, 19)


def blank(h=20, w=20):
    return np.full((h, w, 3), 255, dtype=np.uint8)


def painted(c):
    return {(int(x), int(y)) for y, x in zip(*np.nonzero((c != 255).any(axis=2)))}


def test_a_dot_is_a_round_disc_at_its_centre():
    c = blank()
    raster.dots(c, np.array([[10.2, 9.8]]), RED, 2.0, BOX)
    got = painted(c)
    assert (10, 10) in got and (8, 10) in got and (12, 10) in got and (10, 8) in got and (10, 12) in got
    assert (8, 8) not in got and (12, 12) not in got  # no square corners
    assert len(got) == 21
    assert tuple(c[10, 10]) == RED


def test_dots_skip_non_finite_points_and_stay_inside_the_clip_box():
    c = blank()
    raster.dots(c, np.array([[np.nan, 3.0], [np.inf, 4.0], [1.0, 1.0]]), RED, 2.0, (0, 0, 5, 5))
    got = painted(c)
    assert got and all(0 <= x <= 5 and 0 <= y <= 5 for x, y in got)
    assert (1, 1) in got


def test_a_segment_covers_every_pixel_between_its_ends():
    c = blank()
    raster.segments(c, np.array([[2.0, 5.0]]), np.array([[12.0, 5.0]]), RED, BOX)
    assert painted(c) == {(x, 5) for x in range(2, 13)}
    c = blank()
    raster.segments(c, np.array([[3.0, 3.0]]), np.array([[9.0, 15.0]]), RED, BOX)
    got = painted(c)
    assert {(3, 3), (9, 15)} <= got
    assert {y for _, y in got} == set(range(3, 16))  # no gaps along the longer axis


def test_polylines_join_consecutive_points():
    c = blank()
    raster.polylines(c, np.array([[[1.0, 1.0], [5.0, 1.0], [5.0, 6.0]]]), RED, BOX)
    assert painted(c) == {(x, 1) for x in range(1, 6)} | {(5, y) for y in range(1, 7)}


def test_an_arrow_has_a_filled_head_at_its_tip_only():
    c = blank(30, 30)
    raster.arrows(c, np.array([[2.0, 15.0]]), np.array([[22.0, 15.0]]), RED, (0, 0, 29, 29), head=6.0)
    got = painted(c)
    assert {(x, 15) for x in range(2, 23)} <= got
    width = lambda x: sum(1 for (px, _) in got if px == x)  # noqa: E731
    assert width(19) >= 3 and width(5) == 1  # wide near the tip, a thin line at the tail


def test_a_zero_length_arrow_draws_only_its_point():
    c = blank()
    raster.arrows(c, np.array([[4.0, 4.0]]), np.array([[4.0, 4.0]]), RED, BOX)
    assert painted(c) == {(4, 4)}
