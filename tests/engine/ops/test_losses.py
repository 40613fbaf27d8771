import math
import zipfile

import pytest
import torch
import torchvision
from torch import nn

from engine.errors import CheckpointError
from engine.models.checkpoint import load_discriminator
from engine.ops import losses
from engine.ops.losses import Distance, DistanceWeights
from tests.engine.models import STYLEGAN_FIXTURES


def _image(r: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_psnr_and_ssim_figures():
    x = torch.zeros(1, 3, 16, 16)
    assert losses.psnr(x, x + 0.2) == pytest.approx(20.0)  # 0.2 in [-1, 1] is 0.1 on [0, 1]: 20 dB
    assert losses.psnr(x, x) >= 99
    assert losses.ssim(_image(), _image()) == pytest.approx(1.0, abs=1e-4)
    assert losses.ssim(_image(seed=1), _image(seed=2)) < 0.2
    weight = torch.ones(1, 1, 16, 16)
    weight[..., :8, :] = 0
    y = x.clone()
    y[..., :8, :] = 1  # wrong only where the weight is zero
    assert losses.psnr(x, y, weight) >= 99 and losses.psnr(x, y) < 10


def test_fallback_distance_names_its_terms_and_has_gradients():
    d = Distance()
    assert d.name == "mse+pyramid+ms-ssim" and not d.perceptual
    y = _image()
    d.set_target(y)
    x = _image(seed=3).requires_grad_(True)
    total, err = d(x)
    total.backward()
    assert float(total.detach()) > float(err.detach()) > 0 and x.grad.abs().sum() > 0
    assert float(d(y)[0]) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(Exception, match="set_target"):
        Distance()(x)


def test_zero_weight_pixels_do_not_count():
    weight = torch.ones(1, 1, 32, 32)
    weight[..., 8:20, 4:30] = 0
    d = Distance()
    x, y = _image(seed=1), _image(seed=2)
    d.set_target(y * weight, weight)  # a masked observation, as the inverse problems pass it
    a = d(x * weight)[0]
    y2 = y.clone()
    y2[..., 8:20, 4:30] = 0.7
    d.set_target(y2 * weight, weight)
    assert float(d(x * weight)[0]) == pytest.approx(float(a), rel=1e-6)


def test_saturated_target_pixels_accept_overshoot():
    y = torch.ones(1, 3, 16, 16)
    d = Distance()
    d.set_target(y)
    assert float(d(y * 3)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(d(y * 0.5)[0]) > 0


def test_discriminator_features_join_the_distance():
    D = load_discriminator(STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg2ada-uncond-p4.pkl")
    d = Distance(DistanceWeights(d_features=1.0), D=D)
    assert d.name.endswith("+d-features")
    d.set_target(_image())
    x = _image(seed=5).requires_grad_(True)
    total, err = d(x)
    plain = Distance()
    plain.set_target(_image())
    assert float(total) > float(plain(x)[0])
    total.backward()
    assert x.grad.abs().sum() > 0
    assert Distance(DistanceWeights(d_features=0.0), D=D).D is None  # off by weight


def test_no_weights_on_disk_means_no_lpips(tmp_path):
    assert losses.find_lpips(hub_dir=tmp_path, model_dirs=[tmp_path]) is None


@pytest.fixture(scope="module")
def vgg_features() -> nn.Sequential:
    torch.manual_seed(0)
    return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])  # VGG16's conv stack


def test_lpips_from_a_torchvision_file_in_the_hub_cache(tmp_path, vgg_features):
    # Real ImageNet weights are not shipped; a random VGG16 in torchvision's file layout tests the path.
    (tmp_path / "checkpoints").mkdir()
    state = {f"features.{k}": v for k, v in vgg_features.state_dict().items()}
    torch.save(state, tmp_path / "checkpoints" / losses.TORCHVISION_FILES["vgg16"])
    lp = losses.find_lpips(hub_dir=tmp_path, model_dirs=[])
    assert lp is not None and lp.name == "lpips-vgg16-uniform" and lp.source.endswith("vgg16-397923af.pth")
    torch.testing.assert_close(lp.features[0].weight, vgg_features[0].weight)
    x, y = _image(), _image(seed=1)
    assert float(lp(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(lp(x, y)) > 0
    d = Distance(lpips=lp)
    assert d.name == "mse+pyramid+ms-ssim+lpips-vgg16-uniform" and d.perceptual
    d.set_target(y)
    xg = x.clone().requires_grad_(True)
    d(xg)[0].backward()
    assert xg.grad.abs().sum() > 0


def test_a_broken_weight_file_is_skipped(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    torch.save({"features.0.weight": torch.zeros(2)}, tmp_path / "checkpoints" / losses.TORCHVISION_FILES["vgg16"])
    assert losses.find_lpips(hub_dir=tmp_path, model_dirs=[], nets=("vgg16",)) is None


class _ScriptedLPIPS(nn.Module):
    """Stands in for NVIDIA's vgg16.pt: VGG16 convolutions plus LPIPS lin weights, as TorchScript."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.layers = features
        self.lin = nn.ParameterList([nn.Parameter(torch.full((1, c, 1, 1), 0.5)) for c in (64, 128, 256, 512, 512)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_nvidia_torchscript_weights_are_read_without_running_them(tmp_path, vgg_features):
    folder = tmp_path / "models"
    folder.mkdir()
    torch.jit.save(torch.jit.script(_ScriptedLPIPS(vgg_features)), folder / losses.NVIDIA_VGG16)
    lp = losses.find_lpips(hub_dir=tmp_path, model_dirs=[folder])
    assert lp is not None and lp.name == "lpips-vgg16" and lp.lin is not None
    torch.testing.assert_close(lp.features[28].weight, vgg_features[28].weight)
    torch.testing.assert_close(lp.features[28].bias, vgg_features[28].bias)
    assert [float(w[0, 0]) for w in lp.lin] == [0.5] * 5
    # code in the archive is never compiled: an archive without it still reads
    stripped = tmp_path / "stripped.pt"
    with zipfile.ZipFile(folder / losses.NVIDIA_VGG16) as src, zipfile.ZipFile(stripped, "w") as dst:
        for item in src.namelist():
            if "/code/" not in item:
                dst.writestr(item, src.read(item))
    features, lin = losses.read_nvidia_vgg16(stripped)
    assert len(lin) == 5 and math.isclose(float(features[0].weight.sum()), float(vgg_features[0].weight.sum()),
                                          rel_tol=1e-6)
    not_a_zip = tmp_path / "not-a-zip.pt"
    not_a_zip.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="TorchScript"):
        losses.read_nvidia_vgg16(not_a_zip)
