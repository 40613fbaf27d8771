"""Checkpoint loading: every genuine-format fixture file, the house format, and hostile files."""

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.errors import CheckpointError, ModelNotFound
from engine.models.checkpoint import load_discriminator, load_generator, read_checkpoint, save_generator
from engine.models.stylegan2 import Discriminator, Generator, truncate
from tests.engine.models import STYLEGAN_FIXTURES as FIX
from tests.engine.models.test_stylegan2 import assert_close

CKPT = FIX / "checkpoints"
FIXTURE_OF = {  # file name stem prefix -> fixture network
    "network-snapshot-sg2ada-uncond": "sg2ada_G", "network-snapshot-sg2ada-cond": "sg2ada_cond_G",
    "network-snapshot-sg3-t": "sg3_T_G", "network-snapshot-sg3-r": "sg3_R_G",
    "network-snapshot-sg3repo-sg2": "sg3repo_sg2_G", "rosinality-": "rosinality_G",
}
FILES = sorted(p.name for p in CKPT.iterdir() if p.suffix in (".pkl", ".pt"))


def fixture_of(file_name):
    (name,) = [v for k, v in FIXTURE_OF.items() if file_name.startswith(k + ("" if k.endswith("-") else "-"))]
    return name


def t(ref, key):
    return torch.from_numpy(ref[key])


def check_nvidia(G, ref, suffix):
    """ADA / stylegan3-repo keys; ``suffix`` is the noise/precision tag of the image keys."""
    z, c = t(ref, "z"), (t(ref, "c") if ref["c"].shape[1] else None)
    assert_close(G.w_avg, ref["w_avg"])
    assert_close(G.mapping(z, c), ref["ws_psi1"])
    cut = int(ref["truncation_cutoff_used"][0]) if "truncation_cutoff_used" in ref else 3
    assert_close(G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=cut), ref[f"ws_psi0.7_cutoff{cut}"])
    for key in ref.files:
        if key.startswith("img_psi") and key.endswith(suffix) and "transform" not in key and "fp16" not in key:
            psi = 0.7 if "psi0.7" in key else 1.0
            kwargs = dict(truncation_psi=psi, truncation_cutoff=cut if "cutoff" in key else None)
            if "none" in key:
                kwargs["noise_mode"] = "none"
            assert_close(G(z, c, **kwargs), ref[key])
    if "ws_custom" in ref:
        assert_close(G.synthesis(t(ref, "ws_custom")), ref[[k for k in ref.files if k.startswith("img_synthesis_ws")][0]])


def check_rosinality(G, ref):
    G.mapping.w_avg.copy_(t(ref, "truncation_latent")[0])
    assert_close(G.mapping(t(ref, "z")), ref["latent_z"])
    assert_close(G(t(ref, "z")), ref["img_z"])
    assert_close(G(t(ref, "z"), truncation_psi=0.7), ref["img_z_trunc0.7"])
    assert_close(G.synthesis(truncate(t(ref, "wplus_custom"), G.w_avg, 0.7)), ref["img_wplus_custom_trunc0.7"])
    mixed = torch.cat([G.mapping(t(ref, "z"))[:, :3], G.mapping(t(ref, "z2"))[:, 3:]], dim=1)
    assert_close(G.synthesis(mixed), ref["img_mix_z_z2_inject3"])
    noise = [t(ref, f"noise_explicit/{i}") for i in range(G.synthesis.num_noise)]
    assert_close(G.synthesis(G.mapping(t(ref, "z")), noise=noise), ref["img_z_explicit_noise"])


@pytest.mark.parametrize("file_name", FILES)
@torch.no_grad()
def test_every_checkpoint_reproduces_the_official_outputs(file_name):
    name = fixture_of(file_name)
    ref = np.load(FIX / f"{name}.npz")
    G = load_generator(CKPT / file_name)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    if name.startswith("rosinality"):
        assert G.family == "rosinality"
        if "converted" in file_name:  # latent_avg of the converter becomes w_avg
            assert_close(G.w_avg, ref["truncation_latent"][0])
        check_rosinality(G, ref)
        return
    official = load_file(FIX / f"{name}.safetensors")
    assert set(G.state_dict()) == set(official)
    assert all(torch.equal(G.state_dict()[k], v) for k, v in official.items())
    if name.startswith("sg3_"):
        assert G.family == "stylegan3"
        check_nvidia(G, ref, "")
        G.synthesis.input.transform.copy_(t(ref, "input_transform_custom"))
        assert_close(G(t(ref, "z")), ref["img_psi1_transform_custom"])
    else:
        assert G.family == "stylegan2"
        check_nvidia(G, ref, "_force_fp32" if name == "sg3repo_sg2_G" else "_const")
    if name == "sg3repo_sg2_G":  # on the CPU the fp16-flagged blocks run in fp32, like that repo's class
        assert G.init_kwargs["synthesis_kwargs"]["conv_clamp"] == 256
        assert_close(G(t(ref, "z")), ref["img_psi1_const_fp16_cpu"])


def test_ada_pickle_keeps_the_official_hyper_parameters():
    import json
    G = load_generator(CKPT / "network-snapshot-sg2ada-cond-p4.pkl")
    assert G.init_kwargs == json.loads((FIX / "sg2ada_cond_G.json").read_text())["init_kwargs"]


@pytest.mark.parametrize("file_name,name", [("network-snapshot-sg2ada-uncond-p3.pkl", "sg2ada_D"),
                                            ("network-snapshot-sg2ada-cond-p4.pkl", "sg2ada_cond_D")])
@torch.no_grad()
def test_discriminator_from_pickle(file_name, name):
    ref = np.load(FIX / f"{name}.npz")
    D = load_discriminator(CKPT / file_name)
    c = t(ref, "c") if ref["c"].shape[1] else None
    assert_close(D(t(ref, "img"), c), ref["logits_all8"])
    assert_close(D(t(ref, "img")[:4], None if c is None else c[:4]), ref["logits_first4"])


@pytest.mark.parametrize("name", ["sg2ada_G", "sg2ada_cond_G", "rosinality_G"])
@torch.no_grad()
def test_bare_safetensors_state_dicts_infer_their_shapes(name):
    G = load_generator(FIX / f"{name}.safetensors")
    ref = np.load(FIX / f"{name}.npz")
    if name == "rosinality_G":
        check_rosinality(G, ref)
    else:
        check_nvidia(G, ref, "_const")


@torch.no_grad()
def test_plain_pickle_of_a_state_dict(tmp_path):
    sd = load_file(FIX / "rosinality_G.safetensors")
    ref = np.load(FIX / "rosinality_G.npz")
    (tmp_path / "g.pkl").write_bytes(pickle.dumps({"g_ema": sd, "latent_avg": t(ref, "truncation_latent")[0]}))
    G = load_generator(tmp_path / "g.pkl")
    assert G.family == "rosinality"
    assert_close(G(t(ref, "z"), truncation_psi=0.7), ref["img_z_trunc0.7"])


# ----------------------------------------------------------------------------- house format


@torch.no_grad()
def test_house_format_round_trip_with_non_default_hyper_parameters(tmp_path):
    torch.manual_seed(5)
    G = Generator(16, 3, 24, 16, 1, mapping_kwargs=dict(num_layers=3, lr_multiplier=0.1, embed_features=8,
                                                        layer_features=20, activation="relu"),
                  synthesis_kwargs=dict(channel_base=128, channel_max=16, architecture="resnet", conv_clamp=0.5,
                                        num_fp16_res=1, resample_filter=[1, 2, 1])).eval()
    G.mapping.w_avg.normal_()
    D = Discriminator(3, 16, 1, architecture="skip", channel_base=64, channel_max=16, cmap_dim=6,
                      mapping_kwargs=dict(num_layers=2), epilogue_kwargs=dict(mbstd_group_size=2)).eval()
    path = tmp_path / "net.safetensors"
    save_generator(G, path, D=D, extra_metadata={"title": "test net", "seed": 5})
    assert sorted(os.listdir(tmp_path)) == ["net.safetensors"]
    G2, D2 = load_generator(path), load_discriminator(path)
    assert G2.init_kwargs == G.init_kwargs and G2.family == "stylegan2"
    assert G2.extra_metadata == {"title": "test net", "seed": 5}
    assert all(torch.equal(G2.state_dict()[k], v) for k, v in G.state_dict().items())
    z, c = torch.randn(2, 16), torch.eye(3)[:2]
    assert torch.equal(G2(z, c, truncation_psi=0.5), G(z, c, truncation_psi=0.5))
    img = torch.randn(4, 1, 16, 16)
    assert torch.equal(D2(img, torch.eye(3)[[0, 1, 2, 0]]), D(img, torch.eye(3)[[0, 1, 2, 0]]))


@torch.no_grad()
def test_house_format_round_trip_of_loaded_families(tmp_path):
    for file_name in ("rosinality-train-format.pt", "network-snapshot-sg3-r-p4.pkl"):
        G = load_generator(CKPT / file_name)
        save_generator(G, tmp_path / "g.safetensors")
        G2 = load_generator(tmp_path / "g.safetensors")
        assert G2.family == G.family and G2.init_kwargs == G.init_kwargs
        z = torch.randn(2, G.z_dim)
        assert torch.equal(G2(z, truncation_psi=0.6), G(z, truncation_psi=0.6))


# ----------------------------------------------------------------------------- hostile and wrong files


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ModelNotFound):
        load_generator(tmp_path / "nope.pkl")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pkl: the file is empty"):
        load_generator(tmp_path / "empty.pkl")


@pytest.mark.parametrize("file_name", ["network-snapshot-sg2ada-uncond-p4.pkl", "rosinality-converted-format.pt"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_truncated_files(tmp_path, file_name, fraction):
    data = (CKPT / file_name).read_bytes()
    bad = tmp_path / file_name
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=file_name):
        load_generator(bad)


def test_truncated_safetensors(tmp_path):
    data = (FIX / "sg2ada_G.safetensors").read_bytes()
    (tmp_path / "g.safetensors").write_bytes(data[:-1000])
    with pytest.raises(CheckpointError, match="g.safetensors: truncated or corrupt"):
        load_generator(tmp_path / "g.safetensors")


@pytest.mark.parametrize("content", [b"hello, this is a text file\n" * 20,
                                     bytes(np.random.RandomState(0).randint(0, 256, 4096, dtype=np.uint8)),
                                     b"\x80" + bytes(np.random.RandomState(1).randint(0, 256, 4096, dtype=np.uint8))])
def test_text_and_random_bytes(tmp_path, content):
    (tmp_path / "model.pkl").write_bytes(content)
    with pytest.raises(CheckpointError, match="model.pkl"):
        load_generator(tmp_path / "model.pkl")


def test_wrong_kind_of_model(tmp_path):
    sr = {"conv_first.weight": torch.randn(64, 3, 3, 3), "body.0.rdb1.conv1.weight": torch.randn(32, 64, 3, 3)}
    torch.save({"params_ema": sr}, tmp_path / "esrgan.pth")
    with pytest.raises(CheckpointError, match="esrgan.pth: not a StyleGAN generator. Got: .*conv_first"):
        load_generator(tmp_path / "esrgan.pth")
    save_file({"a": torch.zeros(3), "b": torch.ones(2, 2)}, tmp_path / "random.safetensors")
    with pytest.raises(CheckpointError, match="random.safetensors: not a StyleGAN generator"):
        load_generator(tmp_path / "random.safetensors")
    with pytest.raises(CheckpointError, match="hyper-parameters"):
        load_generator(FIX / "sg3_T_G.safetensors")
    with pytest.raises(CheckpointError, match="no StyleGAN2 discriminator"):
        load_discriminator(CKPT / "rosinality-train-format.pt")
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4, 4)}}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="broken.pt"):
        load_generator(tmp_path / "broken.pt")


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_that_would_run_a_command_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = _RunsCommand(marker)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G_ema": evil, "G": None}))
    with pytest.raises(CheckpointError, match=r"evil.pkl: refused to load.*Got: (posix|os)\.system"):
        load_generator(tmp_path / "evil.pkl")
    torch.save({"g_ema": evil}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: unreadable, corrupt or unsafe"):
        load_generator(tmp_path / "evil.pt")
    assert not marker.exists()
    pickle.loads(pickle.dumps(evil))  # the same payload does run when unpickled normally
    assert marker.exists()


def test_embedded_module_source_is_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    fake = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # what a pickle names; its real version execs module_src
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = fake.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj
    parent = types.ModuleType("torch_utils")
    parent.persistence = fake
    monkeypatch.setitem(sys.modules, "torch_utils", parent)  # lets pickle name the function, nothing more
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", fake)

    class Record:
        def __reduce__(self):
            meta = dict(type="class", version=6, class_name="Generator", state={"_modules": {}},
                        module_src=f"open({str(marker)!r}, 'w').write('x')\nclass Generator: pass\n")
            return _reconstruct_persistent_obj, (meta,)

    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=4).dump({"G_ema": Record()})
    (tmp_path / "snap.pkl").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="snap.pkl: entry 'G_ema' is not a known StyleGAN network"):
        load_generator(tmp_path / "snap.pkl")
    assert not marker.exists()


def test_read_checkpoint_reports_both_networks():
    records = read_checkpoint(CKPT / "network-snapshot-sg2ada-cond-p3.pkl")
    assert {k: r.architecture for k, r in records.items()} == {"G": "stylegan2", "D": "stylegan2-discriminator"}


def test_house_file_whose_kwargs_do_not_fit_its_weights(tmp_path):
    G = load_generator(CKPT / "network-snapshot-sg2ada-uncond-p4.pkl")
    G.init_kwargs = dict(G.init_kwargs, w_dim=32)
    save_generator(G, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="bad.safetensors: the stylegan2 weights do not fit"):
        load_generator(tmp_path / "bad.safetensors")
    G.init_kwargs = dict(G.init_kwargs, synthesis_kwargs={"no_such_option": 1})
    save_generator(G, tmp_path / "bad2.safetensors")
    with pytest.raises(CheckpointError, match="bad2.safetensors: .*no_such_option"):
        load_generator(tmp_path / "bad2.safetensors")
