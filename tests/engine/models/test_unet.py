"""pix2pix U-Net loading. The reference layout is written out here from its definition, level by level,
independently of engine.models.unet, so a naming or ordering slip there fails these tests."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.errors import CheckpointError, ModelNotFound
from engine.models.unet import UnetConfig, UnetGenerator, infer_config, load_unet, save_unet, translate_edges
from tests.engine.models import REPO_ROOT


def reference_levels(num_downs: int, ngf: int, input_nc: int, output_nc: int) -> list[tuple[int, int, int]]:
    """(conv in, down channels, up channels) per level, outermost first, as the reference nests them:
    innermost (8 ngf, 8 ngf), num_downs - 5 middle (8 ngf, 8 ngf), then (4, 8), (2, 4), (1, 2) x ngf,
    and the outermost (output_nc, ngf) reading input_nc channels."""
    outer = [output_nc, ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (num_downs - 4)
    inner = [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (num_downs - 3)
    return [(input_nc if i == 0 else outer[i], inner[i], outer[i]) for i in range(num_downs)]


def reference_state_dict(num_downs: int = 8, ngf: int = 8, norm: str = "batch", input_nc: int = 3,
                         output_nc: int = 3, seed: int = 0, stale_stats: bool = False) -> dict[str, torch.Tensor]:
    """Random weights under the reference ``UnetGenerator`` names (``torch.save(net.state_dict())``).

    Outermost Sequential: 0 down conv, 1 inner block, 2 ReLU, 3 up conv (bias), 4 Tanh.
    Middle: 0 LeakyReLU, 1 down conv, 2 norm, 3 inner block, 4 ReLU, 5 up conv, 6 norm[, 7 Dropout].
    Innermost: 0 LeakyReLU, 1 down conv, 2 ReLU, 3 up conv, 4 norm. Convs before a BatchNorm have no bias.
    """
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    bias = norm == "instance"

    def norm_layer(name, channels):
        if norm == "batch":
            sd[name + ".weight"] = 1 + 0.1 * torch.randn(channels, generator=gen)
            sd[name + ".bias"] = 0.1 * torch.randn(channels, generator=gen)
            sd[name + ".running_mean"] = 0.1 * torch.randn(channels, generator=gen)
            sd[name + ".running_var"] = 1 + torch.rand(channels, generator=gen)
            sd[name + ".num_batches_tracked"] = torch.tensor(1000)
        elif stale_stats:  # InstanceNorm state of PyTorch < 0.4, which the reference deletes on load
            sd[name + ".running_mean"], sd[name + ".running_var"] = torch.zeros(channels), torch.ones(channels)

    levels = reference_levels(num_downs, ngf, input_nc, output_nc)
    prefix = "model.model."
    for i, (cin, down, up) in enumerate(levels):
        last = i == len(levels) - 1
        if i == 0:
            sd[prefix + "0.weight"] = torch.randn(down, cin, 4, 4, generator=gen) * 0.05
            if bias:
                sd[prefix + "0.bias"] = torch.zeros(down)
            sd[prefix + "3.weight"] = torch.randn(2 * down, up, 4, 4, generator=gen) * 0.05
            sd[prefix + "3.bias"] = torch.randn(up, generator=gen) * 0.05
            prefix += "1.model."
            continue
        sd[prefix + "1.weight"] = torch.randn(down, cin, 4, 4, generator=gen) * 0.05
        if bias:
            sd[prefix + "1.bias"] = torch.randn(down, generator=gen) * 0.05
        up_index, up_in = (3, down) if last else (5, 2 * down)
        sd[f"{prefix}{up_index}.weight"] = torch.randn(up_in, up, 4, 4, generator=gen) * 0.05
        if bias:
            sd[f"{prefix}{up_index}.bias"] = torch.randn(up, generator=gen) * 0.05
        if last:
            norm_layer(prefix + "4", up)
        else:
            norm_layer(prefix + "2", down)
            norm_layer(prefix + "6", up)
            prefix += "3.model."
    return sd


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, norm: str, num_downs: int) -> torch.Tensor:
    """The reference's eval-mode computation, written with functional ops over the state dict."""

    def n(h, name):
        if norm == "instance":
            return F.instance_norm(h)
        return F.batch_norm(h, sd[name + ".running_mean"], sd[name + ".running_var"], sd[name + ".weight"],
                            sd[name + ".bias"], training=False)

    def down(h, name):
        return F.conv2d(h, sd[name + ".weight"], sd.get(name + ".bias"), stride=2, padding=1)

    def up(h, name):
        return F.conv_transpose2d(h, sd[name + ".weight"], sd.get(name + ".bias"), stride=2, padding=1)

    def level(h, prefix, depth):
        if depth == num_downs - 1:  # innermost
            y = up(F.relu(down(F.leaky_relu(h, 0.2), prefix + "1")), prefix + "3")
            return torch.cat([h, n(y, prefix + "4")], 1)
        y = n(down(F.leaky_relu(h, 0.2), prefix + "1"), prefix + "2")
        y = level(y, prefix + "3.model.", depth + 1)
        return torch.cat([h, n(up(F.relu(y), prefix + "5"), prefix + "6")], 1)

    inner = level(down(x, "model.model.0"), "model.model.1.model.", 1)
    return torch.tanh(up(F.relu(inner), "model.model.3"))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_256_in_the_reference_layout_loads_and_computes_the_reference_function(tmp_path, norm):
    sd = reference_state_dict(8, ngf=8, norm=norm)
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    net = load_unet(path)
    assert net.config == UnetConfig(input_nc=3, output_nc=3, num_downs=8, ngf=8, norm=norm, dropout=True)
    assert net.config.resolution == 256 and not net.training
    assert set(net.state_dict()) == set(sd) and all(torch.equal(net.state_dict()[k], v) for k, v in sd.items())
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        y = net(x)
        torch.testing.assert_close(y, reference_forward(sd, x, norm, 8), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(net(x), y)  # eval: dropout off, running stats used
    assert y.shape == (1, 3, 256, 256) and float(y.abs().max()) <= 1


def test_unet_128_with_other_channels_and_old_file_quirks(tmp_path):
    sd = reference_state_dict(7, ngf=4, norm="instance", input_nc=1, output_nc=2, stale_stats=True)
    wrapped = {"module." + k: v for k, v in sd.items()}  # saved from a DataParallel model
    torch.save(wrapped, tmp_path / "g.pth")
    net = load_unet(tmp_path / "g.pth")
    assert (net.config.num_downs, net.config.input_nc, net.config.output_nc, net.config.norm) == (7, 1, 2, "instance")
    batch = reference_state_dict(7, ngf=4)
    batch = {k: v for k, v in batch.items() if not k.endswith("num_batches_tracked")}  # files before PyTorch 0.4.1
    torch.save(batch, tmp_path / "old.pth")
    assert load_unet(tmp_path / "old.pth").config.norm == "batch"


def test_the_reference_unet_256_has_its_published_size():
    with torch.device("meta"):
        net = UnetGenerator(UnetConfig())
    # the reference prints "Total number of parameters : 54.414 M" for unet_256, ngf 64
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == 54.414


def test_house_safetensors_round_trip_keeps_metadata(tmp_path):
    net = UnetGenerator(UnetConfig(input_nc=1, num_downs=5, ngf=4))
    extra = {"name": "toy", "kind": "edges-to-image", "resolution": 32}
    path = save_unet(net, tmp_path / "toy.safetensors", extra)
    loaded = load_unet(path)
    assert loaded.extra_metadata == extra and loaded.config == net.config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in net.state_dict().items())
    edges = np.zeros((100, 100), bool)
    edges[20:80, 50] = True
    out = translate_edges(loaded, edges)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_wrong_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(ModelNotFound, match="no such model file"):
        load_unet(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="not a pix2pix U-Net generator"):
        load_unet(REPO_ROOT / "resources" / "models" / "house-gan.safetensors")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a pix2pix U-Net generator.*Got: keys like \\['weight'\\]"):
        load_unet(tmp_path / "other.pth")
    sd = reference_state_dict(8, ngf=8)
    sd["model.model.1.model.5.weight"] = torch.zeros(3, 3, 4, 4)
    torch.save(sd, tmp_path / "bent.pth")
    with pytest.raises(CheckpointError, match="do not fit a 8-level U-Net with ngf 8"):
        load_unet(tmp_path / "bent.pth")
    sd = reference_state_dict(6, ngf=8)
    del sd["model.model.1.model." + "3.model." * 4 + "3.weight"]  # the innermost (6th level) up conv
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="without an innermost block"):
        load_unet(tmp_path / "cut.pth")
    with open(tmp_path / "code.pth", "wb") as f:
        pickle.dump(UnetConfig(), f, protocol=2)  # an object, not tensors: refused without being built
    with pytest.raises(CheckpointError, match="not a readable torch weights file"):
        load_unet(tmp_path / "code.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError):
        load_unet(tmp_path / "text.pth")


def test_infer_config_reads_depth_and_norm_from_keys():
    for depth in (5, 6, 8):
        for norm in ("batch", "instance"):
            config = infer_config(reference_state_dict(depth, ngf=2, norm=norm))
            assert (config.num_downs, config.norm, config.ngf) == (depth, norm, 2)
