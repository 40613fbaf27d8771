"""StyleGAN generator forward time per image, engine vs the plainest implementation of the same ops.

The reference renders each sample on its own with explicitly modulated/demodulated weights,
upsamples by explicit zero insertion followed by a full 2-D FIR convolution and then a regular
3x3 convolution at the high resolution, in plain NCHW (the textbook form of StyleGAN2's
synthesis, arXiv:1912.04958 Eq. 1-3). Both run in the same process; the reference output is
checked against the engine's before timing. StyleGAN3 networks have no reference here (time only).

Usage: .venv/bin/python bench/stylegan_forward.py [--no-1024] [--repeats 3]
Writes bench/results/stylegan_forward.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.models.checkpoint import load_generator  # noqa: E402
from engine.models.stylegan2 import Generator  # noqa: E402

CKPT = ROOT.parent / "shared" / "fixtures" / "stylegan" / "checkpoints"
FIXTURES = [  # label, checkpoint file
    ("sg2ada_G (32 px)", "network-snapshot-sg2ada-uncond-p4.pkl"),
    ("sg2ada_fp16clamp_G (32 px)", None),  # built from the p4 snapshot's kwargs below
    ("sg3repo_sg2_G (32 px)", "network-snapshot-sg3repo-sg2-p4.pkl"),
    ("rosinality_G (32 px)", "rosinality-converted-format.pt"),
    ("sg3_T_G (32 px)", "network-snapshot-sg3-t-p4.pkl"),
    ("sg3_R_G (32 px)", "network-snapshot-sg3-r-p4.pkl"),
]


# ----------------------------------------------------------------------------- plain reference


def naive_upfirdn(x: torch.Tensor, f: torch.Tensor, up: int, pad: tuple[int, int, int, int], gain: float) -> torch.Tensor:
    """Explicit zero insertion, padding and a full 2-D (depthwise) FIR convolution."""
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype, device=x.device)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, list(pad))
    return F.conv2d(z, (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1), groups=c)


def naive_affine(fc: torch.nn.Module, w: torch.Tensor) -> torch.Tensor:
    return F.linear(w, fc.weight * fc.weight_gain, fc.bias * fc.bias_gain)


def naive_layer(layer: torch.nn.Module, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    styles = naive_affine(layer.affine, w)
    out = []
    for s in range(x.shape[0]):  # one sample at a time, explicit per-sample weights
        wt = layer.weight * styles[s].reshape(1, -1, 1, 1)
        wt = wt / (wt.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xs = x[s:s + 1]
        if layer.up == 2:
            xs = naive_upfirdn(xs, layer.resample_filter, 2, (3, 2, 3, 2), 4.0)
            out.append(F.conv2d(xs, wt.flip([2, 3])))
        else:
            out.append(F.conv2d(xs, wt, padding=layer.padding))
    y = torch.cat(out) + layer.noise_const * layer.noise_strength
    y = F.leaky_relu(y + layer.bias.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
    return y.clamp(-layer.conv_clamp, layer.conv_clamp) if layer.conv_clamp is not None else y


def naive_torgb(layer: torch.nn.Module, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    styles = naive_affine(layer.affine, w) * layer.weight_gain
    y = torch.cat([F.conv2d(x[s:s + 1], layer.weight * styles[s].reshape(1, -1, 1, 1)) for s in range(x.shape[0])])
    y = y + layer.bias.reshape(1, -1, 1, 1)
    return y.clamp(-layer.conv_clamp, layer.conv_clamp) if layer.conv_clamp is not None else y


@torch.no_grad()
def naive_synthesis(G: Generator, ws: torch.Tensor) -> torch.Tensor:
    """Skip-architecture synthesis with noise_mode='const', fp32, NCHW."""
    x = img = None
    w_idx = 0
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        if block.in_channels == 0:
            x = naive_layer(block.conv1, block.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1), ws[:, w_idx])
        else:
            x = naive_layer(block.conv0, x, ws[:, w_idx])
            x = naive_layer(block.conv1, x, ws[:, w_idx + 1])
        if img is not None:
            img = naive_upfirdn(img, block.resample_filter, 2, (2, 1, 2, 1), 4.0)
        y = naive_torgb(block.torgb, x, ws[:, w_idx + block.num_conv])
        img = y if img is None else img + y
        w_idx += block.num_conv
    return img


# ----------------------------------------------------------------------------- timing


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN builds its kernels for each new shape
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@torch.no_grad()
def measure(label: str, G: torch.nn.Module, batch: int, repeats: int, device: str, threads: int) -> dict:
    G = G.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(batch, G.z_dim, generator=gen).to(device)
    c = torch.eye(G.c_dim, device=device)[torch.arange(batch) % G.c_dim] if G.c_dim else None
    ws = G.mapping(z, c)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def engine():
        G.synthesis(ws, noise_mode="const")
        sync()

    torch.set_num_threads(threads)
    row = dict(label=label, device=device, threads=threads, batch=batch, engine=best_time(engine, repeats) / batch)
    if G.family != "stylegan3" and G.synthesis.b4.architecture == "skip":
        ref, ours = naive_synthesis(G, ws), G.synthesis(ws)
        err = (ref - ours).abs().max().item() / max(1.0, ref.abs().max().item())
        assert err < 1e-4, f"{label}: reference and engine disagree by {err:.2e}"

        def naive():
            naive_synthesis(G, ws)
            sync()

        row["naive"] = best_time(naive, max(1, repeats if G.img_resolution < 1024 else 1)) / batch
    return row


def networks(with_1024: bool) -> list[tuple[str, torch.nn.Module, list[int]]]:
    nets = []
    for label, file in FIXTURES:
        if file is None:  # no checkpoint file of this one: official kwargs + state dict
            spec = json.loads((CKPT.parent / "sg2ada_fp16clamp_G.json").read_text())
            G = Generator(**spec["init_kwargs"])
            G.load_state_dict(load_file(CKPT.parent / "sg2ada_fp16clamp_G.safetensors"))
        else:
            G = load_generator(CKPT / file)
        nets.append((label, G, [1, 4]))
    torch.manual_seed(0)
    nets.append(("random 256 px (cbase 16384, 8 mapping layers)",
                 Generator(512, 0, 512, 256, 3, {"num_layers": 8}, {"channel_base": 16384, "channel_max": 512}), [1, 4]))
    if with_1024:
        nets.append(("random 1024 px (config F shapes)",
                     Generator(512, 0, 512, 1024, 3, {"num_layers": 8}, {"channel_base": 32768, "channel_max": 512}),
                     [1]))
    return nets


def to_markdown(rows: list[dict], note: str = "") -> str:
    lines = [
        "# StyleGAN generator forward time (synthesis, noise_mode='const')",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}. Best of "
        "several runs, milliseconds per image (wall clock). Both columns of a row come from the same run; "
        "on a machine shared with other jobs the absolute times are noisy.",
        "Reference = per-sample loop, explicit modulated weights, zero-insertion upsampling + full 2-D FIR, "
        "regular conv at the upsampled resolution, NCHW.",
        *([note] if note else []),
        "",
        "| network | device | threads | batch | engine ms/img | reference ms/img | speed-up |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        naive = f"{r['naive'] * 1e3:.1f}" if "naive" in r else "–"
        ratio = f"{r['naive'] / r['engine']:.2f}x" if "naive" in r else "–"
        lines.append(f"| {r['label']} | {r['device']} | {r['threads']} | {r['batch']} | {r['engine'] * 1e3:.1f} "
                     f"| {naive} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-1024", action="store_true", help="skip the 1024-px network")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}",
                        help="comma-separated CPU thread counts to measure (default: 1 and all)")
    parser.add_argument("--note", default="", help="a line about the run to add to the table's header")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    thread_counts = sorted({int(t) for t in args.threads.split(",")})
    for label, G, batches in networks(not args.no_1024):
        for device in devices:
            for threads in thread_counts if device == "cpu" else [torch.get_num_threads()]:
                for batch in batches:
                    rows.append(measure(label, G, batch, args.repeats, device, threads))
                    print(rows[-1], flush=True)
    out = ROOT / "bench" / "results" / "stylegan_forward.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(rows, args.note))
    print(out.read_text())


if __name__ == "__main__":
    main()
