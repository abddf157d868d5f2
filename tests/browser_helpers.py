"""Helpers the browser tests share (imported like reverse_checkpoints: tests/ is on the path)."""
from __future__ import annotations


def drag(page, selector: str, start: float, end: float, steps: int = 12):
    """Drag a range input's thumb from fraction `start` to fraction `end` of its width, in `steps` moves."""
    box = page.locator(selector).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + start * box["width"], y)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(box["x"] + (start + (end - start) * i / steps) * box["width"], y)
        page.wait_for_timeout(40)
    page.mouse.up()
