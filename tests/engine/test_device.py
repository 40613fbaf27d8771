import pytest
import torch

from engine.device import pick_device
from engine.errors import GanvasError


def test_auto_picks_an_available_device():
    choice = pick_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert choice.device.type == expected
    torch.zeros(1, device=choice.device)
    assert choice.description


def test_cpu_override_and_environment(monkeypatch):
    assert pick_device("cpu").description.startswith("CPU")
    monkeypatch.setenv("GANVAS_DEVICE", "cpu")
    assert pick_device(None).device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_or_unknown_device_is_a_clear_error():
    with pytest.raises(GanvasError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(GanvasError, match="Got: tpu"):
        pick_device("tpu")
