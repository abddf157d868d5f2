import pytest
import torch

import platform

from core.device import autocast, available_devices, cpu_has_bf16, describe_device, pick_device


def test_auto_picks_best_available():
    assert pick_device("auto").type == available_devices()[0]
    assert pick_device(None).type == available_devices()[0]
    assert pick_device("cpu") == torch.device("cpu")


def test_missing_device_is_a_clear_error():
    missing = [d for d in ("cuda", "mps") if d not in available_devices()]
    for name in missing:
        with pytest.raises(ValueError, match=f"device '{name}' was asked for but is not available"):
            pick_device(name)
    with pytest.raises(ValueError, match="unknown device 'tpu'; choose one of auto, cpu, cuda, mps"):
        pick_device("tpu")


def test_autocast_is_a_noop_on_cpu():
    with autocast(torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_describe_device_names_the_cpu_and_its_threads():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe_device("cpu") == f"cpu ({platform.machine()}, 1 thread)"
        torch.set_num_threads(2)
        assert describe_device(torch.device("cpu")) == f"cpu ({platform.machine()}, 2 threads)"
    finally:
        torch.set_num_threads(threads)


def test_cpu_bf16_autocast_only_when_asked_and_the_query_answers_a_bool():
    assert isinstance(cpu_has_bf16(), bool)
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    cpu = torch.device("cpu")
    with autocast(cpu, True):
        assert (a @ b).dtype == torch.float32  # enabled means CUDA's policy; the CPU stays fp32
    with autocast(cpu, False, cpu=True):
        assert (a @ b).dtype == torch.bfloat16
