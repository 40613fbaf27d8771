"""Tiled super-resolution: seams, alpha, 16-bit, TTA, scales, out-of-memory fallback, cancel, files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.SwinIR import SwinIR

from engine.errors import Cancelled, GanvasError
from engine.images import Image, load_image, save_image, to_uint8
from engine.jobs import CancelToken
from engine.models.superres import SRModel, sr_model_from_state_dict
from engine.ops.sr_metrics import imresize, round_uint8
from engine.ops.upscale import (
    Setting,
    UpscaleOptions,
    axis_spans,
    bytes_per_pixel,
    next_setting,
    upscale_file,
    upscale_image,
    write_png_streaming,
)
from tests.conftest import gradient_rgb

CPU = "cpu"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def as_model(net: torch.nn.Module, name: str = "net") -> SRModel:
    return sr_model_from_state_dict({k: v.clone() for k, v in net.state_dict().items()}, Path(name))


def rrdb(scale: int = 4) -> SRModel:
    torch.manual_seed(1)
    return as_model(ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=2, scale=scale))


def compact(scale: int = 4, zero: bool = False) -> SRModel:
    """A random Compact net; ``zero=True`` zeroes every weight, leaving exact nearest-neighbour upsampling
    (SRVGGNetCompact adds the nearest-upsampled input to its residual)."""
    torch.manual_seed(2)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=scale)
    if zero:
        for p in net.parameters():
            p.data.zero_()
    return as_model(net)


def swinir() -> SRModel:
    torch.manual_seed(3)
    return as_model(SwinIR(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4, upscale=2,
                           upsampler="pixelshuffledirect"))


def nearest(pixels: np.ndarray, scale: int) -> np.ndarray:
    return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


def run(model: SRModel, image: Image, **options) -> np.ndarray:
    return upscale_image(model, image, UpscaleOptions(device=CPU, **options)).image.rgb


@pytest.mark.parametrize("build, size, tile, overlap", [
    (rrdb, (56, 72), 48, 8),
    (compact, (72, 88), 64, 16),
    (swinir, (96, 112), 80, 16),
])
def test_tiled_matches_untiled_within_one_level(build, size, tile, overlap):
    model = build()
    image = Image(gradient_rgb(*size))
    whole = upscale_image(model, image, UpscaleOptions(tile=0, device=CPU))
    x = torch.from_numpy(image.rgb / 255.0).float().permute(2, 0, 1)[None]
    direct = to_uint8(model.descriptor(x)[0].permute(1, 2, 0).numpy())
    assert whole.tiles == 1 and np.array_equal(whole.image.rgb, direct)
    tiled = upscale_image(model, image, UpscaleOptions(tile=tile, overlap=overlap, device=CPU))
    assert tiled.tiles >= 4 and tiled.image.rgb.shape == (size[0] * model.scale, size[1] * model.scale, 3)
    assert np.abs(tiled.image.rgb.astype(int) - whole.image.rgb).max() <= 1


def test_images_below_the_model_minimum_are_padded_and_cropped_back():
    model = swinir()  # needs at least 16 x 16 px
    image = Image(gradient_rgb(9, 13))
    x = torch.from_numpy(image.rgb / 255.0).float().permute(2, 0, 1)[None]
    out = run(model, image)
    assert model.size_minimum == 16 and out.shape == (18, 26, 3)
    assert np.array_equal(out, to_uint8(model.descriptor(x)[0].permute(1, 2, 0).numpy()))


@pytest.mark.parametrize("tile, overlap", [(32, 0), (32, 4), (48, 8), (64, 16)])
def test_feathers_sum_to_one_everywhere(tile, overlap):
    # Nearest-neighbour "model": any weight that is lost, doubled or misplaced shows up exactly.
    image = Image(np.random.default_rng(0).random((70, 90, 3), dtype=np.float32))
    out = run(compact(2, zero=True), image, tile=tile, overlap=overlap)
    assert np.allclose(out, nearest(image.rgb, 2), atol=2e-6)


def test_axis_spans_cover_the_axis_once_and_respect_the_tile():
    spans = axis_spans(1000, 3000, 256, 16, align=16)
    assert spans[0].out0 == 0 and spans[-1].out1 == 3000
    assert all(a.trail == b.out0 and a.out1 == b.lead for a, b in zip(spans, spans[1:]))
    assert all(s.in1 - s.in0 <= 256 and s.in0 % 16 == 0 for s in spans)
    total = np.zeros(3000)
    for s in spans:
        total[s.out0 : s.out1] += s.weight
    assert np.allclose(total, 1.0)


def test_alpha_is_kept_bicubic_or_through_the_model():
    rng = np.random.default_rng(1)
    alpha = (np.linspace(0, 255, 40 * 56).reshape(40, 56) + rng.integers(0, 30, (40, 56))).clip(0, 255)
    image = Image(gradient_rgb(40, 56), alpha.astype(np.uint8))
    model = compact(2, zero=True)
    bicubic = upscale_image(model, image, UpscaleOptions(tile=32, overlap=8, device=CPU)).image
    assert bicubic.alpha.shape == (80, 112) and bicubic.alpha.dtype == np.uint8
    expected = round_uint8(imresize(image.alpha.astype(np.float64), 80, 112))
    assert np.abs(bicubic.alpha.astype(int) - expected).max() <= 1
    assert np.array_equal(bicubic.rgb, nearest(image.rgb, 2))
    through = upscale_image(model, image, UpscaleOptions(tile=32, overlap=8, alpha="model", device=CPU)).image
    assert np.array_equal(through.alpha, nearest(image.alpha, 2))


def test_sixteen_bit_stays_sixteen_bit():
    rgb = (np.random.default_rng(2).integers(0, 65536, (24, 30, 3))).astype(np.uint16)
    image = Image(rgb | 1, (np.arange(24 * 30).reshape(24, 30) * 91).astype(np.uint16))  # odd: low bits matter
    out = upscale_image(compact(2, zero=True), image, UpscaleOptions(tile=0, alpha="model", device=CPU)).image
    assert out.rgb.dtype == np.uint16 and np.array_equal(out.rgb, nearest(image.rgb, 2))
    assert out.alpha.dtype == np.uint16 and np.array_equal(out.alpha, nearest(image.alpha, 2))


def test_tta_averages_the_eight_flips_and_rotations():
    model = rrdb(2)
    image = Image(gradient_rgb(20, 26))
    x = torch.from_numpy(image.rgb / 255.0).float().permute(2, 0, 1)[None]
    total = torch.zeros(1, 3, 40, 52)
    for flip in (False, True):
        for k in range(4):
            view = torch.rot90(x.flip(-1) if flip else x, k, (-2, -1))
            y = torch.rot90(model.descriptor(view), -k, (-2, -1))
            total += y.flip(-1) if flip else y
    expected = to_uint8(total[0].permute(1, 2, 0).numpy() / 8)
    plain = run(model, image, tile=0)
    ensemble = run(model, image, tile=0, tta=True)
    assert np.abs(ensemble.astype(int) - expected).max() <= 1
    assert np.abs(plain.astype(int) - expected).max() > 1  # the ensemble really changes the result


def test_arbitrary_scale_resamples_the_model_output():
    model = compact(4, zero=True)
    image = Image(gradient_rgb(30, 40))
    out = run(model, image, scale=3, tile=0)
    assert out.shape == (90, 120, 3)
    expected = round_uint8(imresize(nearest(image.rgb, 4), 90, 120))
    assert np.abs(out.astype(int) - expected).max() <= 1
    tiled = run(model, image, scale=3, tile=32, overlap=8)
    assert np.abs(tiled.astype(int) - out).max() <= 1
    assert run(compact(2), Image(gradient_rgb(21, 17)), scale=2.5, tile=0).shape == (52, 42, 3)


def out_of_memory_above(model: SRModel, pixels: int) -> None:
    """Fault injection: the real model forward raises CUDA's out-of-memory error on big inputs."""
    def hook(_module, inputs):
        if inputs[0].shape[-1] * inputs[0].shape[-2] > pixels:
            raise torch.OutOfMemoryError(f"injected: {tuple(inputs[0].shape)} is too big")

    model.module.register_forward_pre_hook(hook)


def test_out_of_memory_falls_back_to_a_smaller_tile_and_says_so():
    image = Image(gradient_rgb(64, 80))
    model = rrdb(2)
    reference = run(model, image, tile=0)
    out_of_memory_above(model, 40 * 40)
    result = upscale_image(model, image, UpscaleOptions(tile=64, overlap=4, device=CPU))
    assert result.fallbacks == ["out of memory: tile 64 -> 32"] and result.tile == 32
    assert np.abs(result.image.rgb.astype(int) - reference).max() <= 1
    out_of_memory_above(model, 0)
    with pytest.raises(GanvasError, match="out of memory even with a 32 px tile on cpu"):
        upscale_image(model, image, UpscaleOptions(tile=0, overlap=4, device=CPU))


def test_fallback_order_is_tile_then_half_precision_then_cpu():
    cuda = torch.device("cuda")  # only a value here: no GPU is used
    model = compact()
    step = next_setting(Setting(cuda, torch.float32, 512), model, 64, 2000)
    assert step == (Setting(cuda, torch.float32, 256), "tile 512 -> 256")
    step = next_setting(Setting(cuda, torch.float32, 64), model, 64, 2000)
    assert step == (Setting(cuda, torch.float16, 64), "fp32 -> fp16")
    assert next_setting(Setting(cuda, torch.float32, 64), swinir(), 64, 2000)[1] == "fp32 -> bf16"
    assert next_setting(Setting(cuda, torch.float16, 64), model, 64, 2000) == (
        Setting(torch.device("cpu"), torch.float32, 0), "cuda -> cpu")
    assert next_setting(Setting(torch.device("cpu"), torch.float32, 64), model, 64, 2000) is None


def test_progress_per_tile_and_cancel_leaves_no_file(tmp_path):
    source = tmp_path / "in.png"
    save_image(source, gradient_rgb(64, 80))
    model = compact(2)
    steps: list[tuple[int, int]] = []
    result = upscale_file(model, source, tmp_path / "ok.png", UpscaleOptions(tile=32, overlap=4, device=CPU),
                          progress=lambda step, total, message, preview=None: steps.append((step, total)))
    assert steps == [(i, result.tiles) for i in range(1, result.tiles + 1)] and result.tiles >= 6
    for disk_above in (2**30, 0):  # in memory, then memory-mapped beside the output
        token = CancelToken()

        def cancel_after_two(step, total, message, preview=None):
            if step == 2:
                token.cancel()

        target = tmp_path / f"cancelled-{disk_above}.png"
        with pytest.raises(Cancelled):
            upscale_file(model, source, target, UpscaleOptions(tile=32, overlap=4, device=CPU, disk_above=disk_above),
                         progress=cancel_after_two, cancel=token)
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "ok.png"]


@pytest.mark.parametrize("dtype, alpha", [(np.uint8, True), (np.uint16, False), (np.uint16, True)])
def test_memory_mapped_output_streams_into_the_same_png(tmp_path, dtype, alpha):
    rng = np.random.default_rng(3)
    top = 255 if dtype == np.uint8 else 65535
    rgb = rng.integers(0, top + 1, (30, 44, 3)).astype(dtype)
    image_path = tmp_path / "in.png"
    save_image(image_path, rgb, rng.integers(0, top + 1, (30, 44)).astype(dtype) if alpha else None)
    model = compact(2)
    options = UpscaleOptions(tile=32, overlap=4, device=CPU)
    in_memory = upscale_file(model, image_path, tmp_path / "ram.png", options)
    on_disk = upscale_file(model, image_path, tmp_path / "disk.png", UpscaleOptions(**{**vars(options), "disk_above": 0}))
    assert not in_memory.on_disk and on_disk.on_disk and on_disk.image is None
    a, b = load_image(tmp_path / "ram.png"), load_image(tmp_path / "disk.png")
    assert a.rgb.dtype == dtype and np.array_equal(a.rgb, b.rgb)
    assert (a.alpha is None) == (not alpha) and (not alpha or np.array_equal(a.alpha, b.alpha))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.png", "in.png", "ram.png"]


def test_streaming_png_writer_round_trips_through_opencv(tmp_path):
    rng = np.random.default_rng(4)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        rgb = rng.integers(0, top + 1, (23, 31, 3)).astype(dtype)
        alpha = rng.integers(0, top + 1, (23, 31)).astype(dtype)
        released: list[tuple[int, int]] = []
        path = write_png_streaming(tmp_path / "x.png", rgb, alpha, release=lambda a, b: released.append((a, b)), band=5)
        decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert decoded.dtype == dtype and np.array_equal(decoded[..., 2::-1], rgb)
        assert np.array_equal(decoded[..., 3], alpha) and released[-1] == (20, 23)
        path = write_png_streaming(tmp_path / "y.png", rgb, band=7)
        assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1], rgb)


def test_auto_tile_follows_the_memory_budget():
    model = compact(2)
    per_pixel = bytes_per_pixel(model)
    assert per_pixel > 3 * 16 * 4  # at least a few 16-channel float maps
    image = Image(gradient_rgb(96, 128))
    roomy = upscale_image(model, image, UpscaleOptions(device=CPU, memory_budget=2**30))
    tight = upscale_image(model, image, UpscaleOptions(device=CPU, memory_budget=int(64 * 64 * per_pixel)))
    assert roomy.tiles == 1 and roomy.tile == 0
    assert tight.tile == 64 and tight.tiles > 4
    assert np.abs(tight.image.rgb.astype(int) - roomy.image.rgb).max() <= 1


def test_precision_choices_and_bad_options():
    model = compact(2)
    image = Image(gradient_rgb(20, 24))
    result = upscale_image(model, image, UpscaleOptions(tile=0, precision="bf16", device=CPU))
    assert result.precision == "bf16" and result.device == "cpu"
    assert np.abs(result.image.rgb.astype(int) - run(compact(2), image, tile=0)).max() <= 8
    if not torch.cuda.is_available():
        with pytest.raises(GanvasError, match="CUDA"):
            upscale_image(model, image, UpscaleOptions(device="cuda"))
    with pytest.raises(GanvasError, match="does not support fp16"):
        upscale_image(swinir(), image, UpscaleOptions(precision="fp16", device=CPU))
    for bad, match in [({"scale": 0.5}, "scale"), ({"alpha": "ignore"}, "alpha"), ({"tile": 8}, "at least"),
                       ({"tile": "big"}, "tile"), ({"precision": "int8"}, "precision"),
                       ({"scale": 3, "overlap": 2}, "overlap")]:
        with pytest.raises(GanvasError, match=match):
            upscale_image(model, image, UpscaleOptions(**{"device": CPU, **bad}))


def test_command_line_upscales_a_folder_and_skips_bad_images(tmp_path):
    import subprocess
    import sys

    from engine.models.superres import save_sr_model

    root = Path(__file__).resolve().parents[3]
    torch.manual_seed(0)
    weights = save_sr_model(Compact(num_feat=8, num_conv=2, upscale=2), tmp_path / "tiny-x2.safetensors")
    folder = tmp_path / "in"
    folder.mkdir()
    save_image(folder / "a.png", gradient_rgb(20, 24), np.full((20, 24), 128, np.uint8))
    save_image(folder / "b.jpg", gradient_rgb(18, 22))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "main.py", "--device", "cpu", "upscale", str(folder), "--model", str(weights),
         "--scale", "3", "--tile", "32", "--overlap", "6", "--out", str(tmp_path / "out")],
        cwd=root, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    assert "skipped" in result.stderr and "broken.png" in result.stderr and "upscaled 2 of 3" in result.stderr
    assert "tiles" in result.stderr and "Compact x2" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg"]
    a = load_image(tmp_path / "out" / "a.png")
    assert a.rgb.shape == (60, 72, 3) and a.alpha is not None and np.all(np.abs(a.alpha.astype(int) - 128) <= 1)
    single = subprocess.run(
        [sys.executable, "main.py", "--device", "cpu", "upscale", str(folder / "broken.png"), "--model",
         str(weights), "--out", str(tmp_path / "x.png")], cwd=root, capture_output=True, text=True, timeout=120, env=env)
    assert single.returncode == 1 and "broken.png" in single.stderr and not (tmp_path / "x.png").exists()
