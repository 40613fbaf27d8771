"""Loading SR models through spandrel: round trips per family, house format, refusals."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.SwinIR import SwinIR

from engine.errors import CheckpointError, ModelNotFound
from engine.models.superres import HOUSE_SR_FORMAT, load_sr_model, read_sr_state_dict, save_sr_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_rrdb(scale: int = 4) -> torch.nn.Module:
    return ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=scale)


def small_compact(scale: int = 4) -> torch.nn.Module:
    return Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=scale)


def small_swinir() -> torch.nn.Module:
    return SwinIR(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4, upscale=2,
                  upsampler="pixelshuffledirect")


@pytest.mark.parametrize(
    "build, suffix, arch, scale, half, tags",
    [
        (lambda: small_rrdb(4), ".pth", "ESRGAN", 4, True, ["16nf", "1nb"]),
        (lambda: small_rrdb(2), ".safetensors", "ESRGAN", 2, True, ["16nf", "1nb"]),
        (lambda: small_compact(4), ".safetensors", "Compact", 4, True, ["16nf", "4nc"]),
        (lambda: small_compact(3), ".pth", "Compact", 3, True, ["16nf", "4nc"]),
        (small_swinir, ".pth", "SwinIR", 2, False, ["small"]),
    ],
)
def test_round_trip_detects_family_and_hyper_parameters(tmp_path, build, suffix, arch, scale, half, tags):
    torch.manual_seed(0)
    net = build().eval()
    path = tmp_path / f"net{suffix}"
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    if suffix == ".pth":
        torch.save({"params_ema": state}, path)  # the Real-ESRGAN release wrapper
    else:
        save_file(state, str(path))
    model = load_sr_model(path)
    assert (model.architecture, model.scale, model.purpose) == (arch, scale, "SR")
    assert model.supports_half is half and model.supports_bfloat16 is True
    assert set(tags) <= set(model.tags)
    assert model.path == path and model.channels == 3
    assert model.tiling == ("discouraged" if arch == "SwinIR" else "supported")
    assert f"x{scale}" in model.summary()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        expected = net(x).clamp(0, 1)
    assert torch.allclose(model.descriptor(x), expected, atol=1e-5)


def test_house_format_round_trip_and_metadata(tmp_path):
    from safetensors import safe_open

    path = save_sr_model(small_compact(4), tmp_path / "house-sr-x4.safetensors", {"trained_on": "test"})
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    assert meta["format"] == HOUSE_SR_FORMAT and meta["architecture"] == "Compact" and meta["scale"] == "4"
    model = load_sr_model(path)
    assert model.architecture == "Compact" and model.scale == 4
    assert not list(tmp_path.glob("*.part"))


def test_catalogue_id_resolves_in_the_user_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GANVAS_MODELS_DIR", str(tmp_path))
    save_sr_model(small_compact(2), tmp_path / "my-sr.safetensors")
    assert load_sr_model("my-sr").scale == 2
    with pytest.raises(ModelNotFound):
        load_sr_model("no-such-sr-model")


def test_save_refuses_what_spandrel_cannot_reload(tmp_path):
    with pytest.raises(CheckpointError, match="not a super-resolution architecture"):
        save_sr_model(torch.nn.Linear(3, 3), tmp_path / "x.safetensors")
    # SwinIR's image range is inferred from its window size (7 means a 0-255 JPEG model): a
    # window-7 SR net with range 1.0 would load as a different network, so it is refused.
    swinir = SwinIR(img_size=14, embed_dim=12, depths=[1], num_heads=[2], window_size=7, upscale=2,
                    upsampler="pixelshuffledirect", img_range=1.0)
    with pytest.raises(CheckpointError, match="different SwinIR network"):
        save_sr_model(swinir, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match=".safetensors"):
        save_sr_model(small_compact(), tmp_path / "x.pth")
    assert not list(tmp_path.iterdir())


def refusal_cases(tmp_path: Path) -> list[tuple[Path, str]]:
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights")
    random_dict = tmp_path / "random.pth"
    torch.save({"encoder.weight": torch.randn(4, 4), "encoder.bias": torch.randn(4)}, random_dict)
    stylegan = tmp_path / "network-snapshot.pkl"
    stylegan.write_bytes(pickle.dumps({"G_ema": None}))
    rosinality = tmp_path / "rosinality.pt"
    torch.save({"g_ema": {"style.1.weight": torch.randn(8, 8)}, "latent_avg": torch.randn(8)}, rosinality)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(_Evil(), protocol=2))
    scripted = tmp_path / "scripted.pt"
    torch.jit.trace(small_compact(2), torch.rand(1, 3, 8, 8)).save(str(scripted))
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    house_gan = tmp_path / "house-gan.safetensors"
    save_file({"G.mapping.fc0.weight": torch.randn(4, 4)}, str(house_gan), metadata={"format": "ganvas.stylegan",
                                                                                   "architecture": "stylegan2"})
    shapes = tmp_path / "shapes.safetensors"
    state = small_compact(4).state_dict()
    state["body.0.weight"] = torch.randn(16, 3, 5, 5)  # Compact keys, wrong kernel size
    save_file({k: v.contiguous() for k, v in state.items()}, str(shapes))
    return [
        (text, "not a PyTorch file"),
        (random_dict, "not a super-resolution architecture"),
        (stylegan, "StyleGAN"),
        (rosinality, "nested groups"),
        (evil, "weights only"),
        (scripted, "TorchScript"),
        (empty, "empty"),
        (broken, "safetensors"),
        (shapes, "do not fit"),
        (house_gan, "ganvas.stylegan file (architecture stylegan2), not a super-resolution model"),
        (tmp_path / "missing.pth", "no such file"),
        (tmp_path / "model.onnx", "no such file"),
    ]


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_bad_files_raise_checkpoint_error_naming_the_file(tmp_path, capsys):
    for path, reason in refusal_cases(tmp_path):
        with pytest.raises(CheckpointError) as info:
            read_sr_state_dict(path) if "missing" in path.name or path.suffix == ".onnx" else load_sr_model(path)
        assert str(path) in str(info.value) and reason in str(info.value), (path.name, str(info.value))
    assert "must never run" not in capsys.readouterr().out


def test_unknown_suffix_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx")
    with pytest.raises(CheckpointError, match="Got: .onnx"):
        read_sr_state_dict(path)


def test_non_sr_purposes_are_refused_unless_allowed(tmp_path):
    path = tmp_path / "denoise.safetensors"
    save_file({k: v.contiguous() for k, v in small_compact(1).state_dict().items()}, str(path))
    with pytest.raises(CheckpointError, match="Restoration"):
        load_sr_model(path)
    assert load_sr_model(path, allow_restoration=True).scale == 1
