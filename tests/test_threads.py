"""core.threads: one default and one option for torch's CPU threads in every tool."""
import argparse

import pytest
import torch

from core import threads


def test_default_is_half_the_cores_at_least_one(monkeypatch):
    for cores, want in ((1, 1), (2, 1), (3, 1), (8, 4), (16, 8)):
        monkeypatch.setattr(threads, "cores", lambda c=cores: c)
        assert threads.default_threads() == want


def test_apply_sets_torch_and_refuses_less_than_one():
    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(2) == 2 and torch.get_num_threads() == 2
        assert threads.apply_threads(None) == threads.default_threads() == torch.get_num_threads()
        with pytest.raises(ValueError, match="--threads must be at least 1, got 0"):
            threads.apply_threads(0)
    finally:
        torch.set_num_threads(before)


def test_option_parses_and_defaults_to_none():
    p = argparse.ArgumentParser()
    threads.add_threads_option(p)
    assert p.parse_args([]).threads is None and p.parse_args(["--threads", "3"]).threads == 3
