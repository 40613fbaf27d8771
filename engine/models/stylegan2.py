"""StyleGAN2 generator and discriminator with NVIDIA's official parameter names.

Implements "Analyzing and Improving the Image Quality of StyleGAN" (Karras et al., arXiv:1912.04958)
as laid out in NVlabs/stylegan2-ada-pytorch (arXiv:2006.06676): mapping network with truncation
towards ``w_avg``, weight modulation/demodulation (Eq. 1-3 of the paper), skip generator and
residual discriminator (Sec. 4.1). State dicts of the official ``Generator`` / ``Discriminator``
load 1:1 with ``strict=True``. Departures: upfirdn2d and bias_act are plain PyTorch ops (no custom
kernels); fp16 blocks run in half precision only on CUDA (on the CPU everything is fp32); the
synthesis network also accepts an explicit ``channels`` table (needed for rosinality checkpoints)
and explicit per-layer noise maps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import check

_SQRT2 = math.sqrt(2.0)
_Act = Callable[[Tensor], Tensor]
_ACTIVATIONS: dict[str, tuple[_Act, _Act, float]] = {  # name -> (fn, in-place fn, default gain)
    "linear": (lambda x: x, lambda x: x, 1.0),
    "relu": (F.relu, F.relu_, _SQRT2),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), lambda x: F.leaky_relu_(x, 0.2), _SQRT2),
    "tanh": (torch.tanh, torch.tanh_, 1.0),
    "sigmoid": (torch.sigmoid, torch.sigmoid_, 1.0),
    "elu": (F.elu, F.elu_, 1.0),
    "selu": (F.selu, F.selu_, 1.0),
    "softplus": (F.softplus, F.softplus, 1.0),
    "swish": (F.silu, lambda x: F.silu(x, inplace=True), _SQRT2),
}
NOISE_MODES = ("const", "random", "none")


# ----------------------------------------------------------------------------- ops


def setup_filter(f: Sequence[float] | Sequence[Sequence[float]]) -> Tensor:
    """FIR filter taps -> normalised 2-D filter (sum 1), as the official ``setup_filter``."""
    t = torch.as_tensor(f, dtype=torch.float32)
    if t.ndim == 1:
        t = torch.outer(t, t)
    return t / t.sum()


def bias_act(x: Tensor, b: Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, inplace: bool = False) -> Tensor:
    """Add bias along dim 1, apply ``act``, scale by ``gain`` (default: the activation's), clamp.

    ``inplace`` lets it overwrite ``x`` when no gradient is recorded (saves large allocations).
    """
    fn, fn_, def_gain = _ACTIVATIONS[act]
    gain = def_gain if gain is None else gain
    if inplace and not (torch.is_grad_enabled() and x.requires_grad):
        if b is not None:
            x.add_(b.reshape([1, -1] + [1] * (x.ndim - 2)))
        x = fn_(x)
        x = x.mul_(gain) if gain != 1 else x
        return x.clamp_(-clamp, clamp) if clamp is not None and clamp >= 0 else x
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    x = fn(x)
    x = x * gain if gain != 1 else x
    return x.clamp(-clamp, clamp) if clamp is not None and clamp >= 0 else x


def upfirdn2d(x: Tensor, f: Tensor, up: int = 1, down: int = 1,
              padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> Tensor:
    """Upsample by zero insertion, pad, convolve with the 2-D FIR ``f``, downsample.

    Same semantics as NVIDIA's ``upfirdn2d`` (true convolution, ``flip_filter=False``).
    ``x``: (N, C, H, W); ``padding``: (x0, x1, y0, y1), negative values crop.
    """
    c = x.shape[1]
    fh, fw = f.shape
    px0, px1, py0, py1 = padding
    k = (f * gain).to(x.dtype)
    if up > 1:
        # Zero insertion followed by convolution is a strided depthwise transposed convolution,
        # which skips the multiplications by the inserted zeros.
        x = F.conv_transpose2d(x, k[None, None].repeat(c, 1, 1, 1), stride=up, groups=c)
        x = F.pad(x, [px0 - (fw - 1), px1 - (fw - up), py0 - (fh - 1), py1 - (fh - up)])
        return x[:, :, ::down, ::down] if down > 1 else x
    k = k.flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    if px0 == px1 >= 0 and py0 == py1 >= 0:  # let the convolution pad: saves a copy of x
        return F.conv2d(x, k, stride=down, padding=[py0, px0], groups=c)
    return F.conv2d(F.pad(x, [px0, px1, py0, py1]), k, stride=down, groups=c)


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """2x FIR upsampling that keeps the image centred (official ``upsample2d``)."""
    fh, fw = f.shape
    pad = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=pad, gain=up * up)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:
    """2x FIR downsampling (official ``downsample2d``)."""
    fh, fw = f.shape
    pad = ((fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2)
    return upfirdn2d(x, f, down=down, padding=pad)


def conv2d_resample(x: Tensor, w: Tensor, f: Tensor | None = None, up: int = 1, down: int = 1,
                    padding: int = 0, groups: int = 1) -> Tensor:
    """Convolution with FIR up/downsampling, following the official fast paths.

    ``w``: (O, I/groups, kh, kw). The official callers always end up with a correlation for
    plain/downsampling convolutions and an unflipped kernel for transposed ones, so no
    ``flip_weight`` option is needed.
    """
    out_c, in_per_group, kh, kw = w.shape
    fh, fw = f.shape if f is not None else (1, 1)
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    if kh == 1 and kw == 1 and down > 1 and up == 1:
        return F.conv2d(upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1)), w, groups=groups)
    if kh == 1 and kw == 1 and up > 1 and down == 1:
        return upfirdn2d(F.conv2d(x, w, groups=groups), f, up=up, padding=(px0, px1, py0, py1), gain=up * up)
    if down > 1 and up == 1:
        return F.conv2d(upfirdn2d(x, f, padding=(px0, px1, py0, py1)), w, stride=down, groups=groups)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:  # (G*O', I', k, k) -> (G*I', O', k, k)
            w = w.reshape(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_c // groups, kh, kw)
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = F.conv_transpose2d(x, w, stride=up, padding=[pyt, pxt], groups=groups)
        x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up)
        return downsample2d(x, f, down) if down > 1 else x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return F.conv2d(x, w, padding=[py0, px0], groups=groups)
    return F.conv2d(F.pad(x, [px0, px1, py0, py1]), w, groups=groups)


def _conv1x1(x: Tensor, w: Tensor) -> Tensor:
    """1x1 convolution as a matmul in x's memory layout; ``w``: (O, I) shared or (N, O, I) per sample."""
    n, c, h, wd = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = x.permute(0, 2, 3, 1).reshape(n, h * wd, c) @ w.transpose(-1, -2)  # (N, HW, O)
        return y.reshape(n, h, wd, -1).permute(0, 3, 1, 2)  # (N, O, H, W), NHWC in memory
    return (w @ x.reshape(n, c, h * wd)).reshape(n, -1, h, wd)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, noise: Tensor | None = None,
                     up: int = 1, padding: int = 0, resample_filter: Tensor | None = None,
                     demodulate: bool = True, fused: bool | None = True) -> Tensor:
    """Modulated (and demodulated) convolution, StyleGAN2 Eq. 1-3.

    ``x``: (N, I, H, W); ``weight``: (O, I, k, k); ``styles``: (N, I). ``fused`` folds the styles
    into per-sample weights and runs one grouped convolution; otherwise the styles scale the
    activations around one shared-weight convolution. ``None`` picks the cheaper of the two
    for this layer's size (scaling weights vs scaling activations).
    """
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    if fused is None:  # per sample: O*I*k*k weight products vs I*H*W + O*(up*H)*(up*W) activation ones
        fused = n == 1 and out_c * kh * kw < x.shape[2] * x.shape[3] * (1 + up * up * out_c / in_c)
    if x.dtype == torch.float16 and demodulate:  # keep fp16 intermediates in range (official)
        weight = weight * (1 / math.sqrt(in_c * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if demodulate:  # 1 / |w * s| per (sample, output), without materialising per-sample weights
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # (N, O)
    if fused:
        scale = styles.reshape(n, 1, -1) if dcoefs is None else dcoefs.reshape(n, -1, 1) * styles.reshape(n, 1, -1)
        w = (weight.unsqueeze(0) * scale.reshape(n, -1, in_c, 1, 1)).to(x.dtype)  # (N, O, I, k, k)
        if kh == kw == 1 and up == 1:  # batched matmul beats a 1x1 grouped convolution
            x = _conv1x1(x, w.reshape(n, out_c, in_c))
        else:
            if n > 1:  # (1, N*I, H, W); skipped for N = 1, where reshape would copy an NHWC tensor
                x = x.reshape(1, -1, *x.shape[2:])
            x = conv2d_resample(x, w.reshape(-1, in_c, kh, kw), resample_filter, up=up, padding=padding, groups=n)
            if n > 1:
                x = x.reshape(n, -1, *x.shape[2:])  # (N, O, H', W')
    else:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        if kh == kw == 1 and up == 1:
            x = _conv1x1(x, weight.to(x.dtype).reshape(out_c, in_c))
        else:
            x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    # in place: x is always a fresh result here, and add_ needs no saved values for backward
    return x.add_(noise.to(x.dtype)) if noise is not None else x


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Pixel norm over dim 1."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def truncate(ws: Tensor, w_avg: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
    """Truncation trick: move ``ws`` (N, num_ws, w_dim) towards ``w_avg`` by ``psi``.

    Only the first ``cutoff`` slots move when ``cutoff`` is given. Works for any W+ code.
    """
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


# ----------------------------------------------------------------------------- layers


class FullyConnectedLayer(nn.Module):
    """Equalised-lr linear layer: weights stored / lr, runtime gain lr / sqrt(fan_in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype)
        b = self.bias
        if b is not None:
            b = b.to(x.dtype) * self.bias_gain if self.bias_gain != 1 else b.to(x.dtype)
        if self.activation == "linear" and b is not None:  # gain on the product: no scaled weight copy
            return torch.addmm(b.unsqueeze(0), x, w.t(), alpha=self.weight_gain)
        return bias_act(x.matmul(w.t()) * self.weight_gain, b, self.activation, inplace=True)


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional FIR up/downsampling (discriminator, resnet skips)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = _ACTIVATIONS[activation][2]
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.register_buffer("resample_filter", setup_filter(resample_filter))

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, self.activation, gain=self.act_gain * gain, clamp=clamp, inplace=True)


class MappingNetwork(nn.Module):
    """z (+ embedded label) -> w, broadcast to ``num_ws`` slots; tracks ``w_avg`` when training."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Tensor | None, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> Tensor:
        """``z``: (N, z_dim), ``c``: (N, c_dim) -> ws (N, num_ws, w_dim), or (N, w_dim) if num_ws is None."""
        x = None
        if self.z_dim > 0:
            check(z is not None and z.ndim == 2 and z.shape[1] == self.z_dim,
                  f"z must have shape (N, {self.z_dim}). Got: {None if z is None else tuple(z.shape)}")
            x = normalize_2nd_moment(z.to(self.fc0.weight.dtype))
        if self.c_dim > 0:
            check(c is not None and c.ndim == 2 and c.shape[1] == self.c_dim,
                  f"this network is conditional: c must have shape (N, {self.c_dim}). "
                  f"Got: {None if c is None else tuple(c.shape)}")
            y = normalize_2nd_moment(self.embed(c.to(self.embed.weight.dtype)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.num_ws is None:
            return x
        if self.training and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # (N, num_ws, w_dim)
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling) + noise + bias + activation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = _ACTIVATIONS[activation][2]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def _noise(self, n: int, device: torch.device, noise_mode: str, noise: Tensor | None) -> Tensor | None:
        if not self.use_noise or (noise is None and noise_mode == "none"):
            return None
        if noise is None:
            noise = self.noise_const if noise_mode == "const" else \
                torch.randn([n, 1, self.resolution, self.resolution], device=device)
        return noise * self.noise_strength

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const", fused: bool = True,
                gain: float = 1.0, noise: Tensor | None = None) -> Tensor:
        """``x``: (N, I, R/up, R/up), ``w``: (N, w_dim) -> (N, O, R, R). ``noise``: unit map (N|1, 1, R, R)."""
        styles = self.affine(w)
        noise = self._noise(x.shape[0], x.device, noise_mode, noise)
        x = modulated_conv2d(x, self.weight, styles, noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused=fused)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), self.activation, gain=self.act_gain * gain, clamp=clamp,
                        inplace=True)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation, to ``img_channels``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, fused: bool = True) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)


def _auto_fused(training: bool, dtype: torch.dtype, ws: Tensor) -> bool | None:
    """Modulated-conv strategy: the official rule on CUDA; on CPUs a shared-weight conv for batches."""
    if training:
        return False
    if dtype == torch.float32 and ws.device.type == "cuda":
        return True
    return None if ws.shape[0] == 1 else False  # None: cheaper of the two per layer


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [const | up-conv0], conv1, [torgb], image skip."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False, **layer_kwargs):
        super().__init__()
        check(architecture in ("orig", "skip", "resnet"), f"unknown architecture. Got: {architecture!r}")
        self.in_channels, self.resolution, self.is_last = in_channels, resolution, is_last
        self.architecture, self.use_fp16 = architecture, use_fp16
        self.num_conv = self.num_torgb = 0
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp,
                                    **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, dtype: torch.dtype = torch.float32,
                memory_format: torch.memory_format = torch.contiguous_format, noise_mode: str = "const",
                fused: bool | None = None, noise: Sequence[Tensor | None] = (None, None)
                ) -> tuple[Tensor, Tensor | None]:
        """``ws``: (N, num_conv + num_torgb, w_dim); ``noise``: one map or None per conv layer."""
        w_iter = iter(ws.unbind(dim=1))
        if fused is None:
            fused = _auto_fused(self.training, dtype, ws)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), noise_mode, fused, noise=noise[0])
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode, fused, noise=noise[0])
            x = y + self.conv1(x, next(w_iter), noise_mode, fused, gain=math.sqrt(0.5), noise=noise[1])
        else:
            x = self.conv0(x, next(w_iter), noise_mode, fused, noise=noise[0])
            x = self.conv1(x, next(w_iter), noise_mode, fused, noise=noise[1])
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused=fused).to(ws.dtype)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, R, R); w slot of a ToRGB = next block's conv0."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, channels: dict | None = None, **block_kwargs):
        super().__init__()
        log2 = int(round(math.log2(img_resolution))) if img_resolution > 0 else 0
        check(img_resolution >= 4 and 2**log2 == img_resolution,
              f"img_resolution must be a power of two >= 4. Got: {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        ch.update({int(res): int(c) for res, c in (channels or {}).items()})  # explicit table wins
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.fp16_devices: tuple[str, ...] = ("cuda",)  # half precision is slow and inexact on CPUs
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(ch[res // 2] if res > 4 else 0, ch[res], w_dim, res, img_channels,
                                   is_last=res == img_resolution, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    @property
    def num_noise(self) -> int:
        """Number of conv layers, i.e. the length of an explicit ``noise`` list."""
        return sum(getattr(self, f"b{res}").num_conv for res in self.block_resolutions)

    def forward(self, ws: Tensor, noise_mode: str = "const", force_fp32: bool = False,
                fused_modconv: bool | None = None, noise: Sequence[Tensor | None] | None = None,
                return_features: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Render ``ws``; ``noise`` (unit maps, one per conv, (N|1, 1, R, R)) overrides ``noise_mode``.

        Returns the image (N, C, H, W) float32, or ``(img, feats)`` with feats[f"b{R}"] = block output x.
        """
        check(ws.ndim == 3 and ws.shape[1] == self.num_ws and ws.shape[2] == self.w_dim,
              f"ws must have shape (N, {self.num_ws}, {self.w_dim}). Got: {tuple(ws.shape)}")
        check(noise_mode in NOISE_MODES, f"noise_mode must be one of {NOISE_MODES}. Got: {noise_mode!r}")
        check(noise is None or len(noise) == self.num_noise,
              f"noise must hold {self.num_noise} maps. Got: {None if noise is None else len(noise)}")
        ws = ws.to(self.b4.const.dtype)  # float32 (float64 only in gradient checks)
        half_ok = not force_fp32 and ws.device.type in self.fp16_devices
        # oneDNN runs (transposed / depthwise) convolutions several times faster on NHWC tensors
        layout = torch.channels_last if ws.device.type == "cpu" else torch.contiguous_format
        x = img = None
        w_idx = n_idx = 0
        feats: dict[str, Tensor] = {}
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            block_noise = noise[n_idx:n_idx + block.num_conv] if noise is not None else (None, None)
            dtype = torch.float16 if block.use_fp16 and half_ok else ws.dtype
            x, img = block(x, img, block_ws, dtype, layout, noise_mode, fused_modconv, block_noise)
            w_idx, n_idx = w_idx + block.num_conv, n_idx + block.num_conv
            feats[f"b{res}"] = x.to(ws.dtype)
        img = img.contiguous()
        return (img, feats) if return_features else img


class Generator(nn.Module):
    """StyleGAN2(-ADA) generator: ``G(z, c)`` = ``G.synthesis(G.mapping(z, c))``.

    Constructor takes the official stylegan2-ada-pytorch kwargs; ``init_kwargs`` keeps them
    (JSON-serialisable) for saving.
    """

    family = "stylegan2"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        mapping_kwargs, synthesis_kwargs = dict(mapping_kwargs or {}), dict(synthesis_kwargs or {})
        if synthesis_kwargs.get("channels"):  # JSON turns the int resolutions into strings
            synthesis_kwargs["channels"] = {int(r): int(c) for r, c in synthesis_kwargs["channels"].items()}
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                                synthesis_kwargs=synthesis_kwargs)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, **mapping_kwargs)

    @property
    def w_avg(self) -> Tensor:
        """Centre of W used by truncation, (w_dim,)."""
        return self.mapping.w_avg

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const", **synthesis_kwargs) -> Tensor:
        """``z``: (N, z_dim) -> image (N, img_channels, R, R), float32, roughly [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)


@torch.no_grad()
def estimate_w_avg(G: nn.Module, n: int = 4096, seed: int = 0, batch: int = 1024) -> Tensor:
    """Mean of ``G.mapping`` over ``n`` standard-normal z (random labels if conditional), (w_dim,)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    total = torch.zeros([G.w_dim], dtype=torch.float64, device=device)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        z = torch.randn([m, G.z_dim], generator=gen).to(device)
        c = None
        if G.c_dim > 0:
            c = F.one_hot(torch.randint(G.c_dim, [m], generator=gen), G.c_dim).to(device, torch.float32)
        total += G.mapping(z, c)[:, 0].sum(dim=0, dtype=torch.float64)
    return (total / n).to(torch.float32)


def build_from_state_dict(cls: type[nn.Module], kwargs: dict, state_dict: dict[str, Tensor]) -> nn.Module:
    """``cls(**kwargs)`` holding ``state_dict`` (strict), skipping the random initialisation.

    The network is built on the meta device and adopts the given tensors, which saves the
    time and memory of initialising weights that are overwritten anyway.
    """
    with torch.device("meta"):
        net = cls(**kwargs)
    net.load_state_dict(state_dict, strict=True, assign=True)
    return net


# ----------------------------------------------------------------------------- discriminator


class MinibatchStdLayer(nn.Module):
    """Appends the std of features over groups of ``group_size`` samples (sample i is in group i % n)."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        check(n % g == 0, f"batch size must be a multiple of the minibatch-std group size {g}. Got: {n}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, n/G, F, c, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # (n/G, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (N, F, H, W)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """[fromrgb], conv0, downsampling conv1, and a 1x1 downsampling skip for 'resnet'."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, first_layer_idx: int = 0, architecture: str = "resnet",
                 activation: str = "lrelu", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 freeze_layers: int = 0):
        super().__init__()  # first_layer_idx / freeze_layers / channels_last only matter for training speed
        self.in_channels, self.resolution, self.architecture, self.use_fp16 = \
            in_channels, resolution, architecture, use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        conv = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, **conv)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, **conv)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2,
                                 resample_filter=resample_filter, **conv)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None, dtype: torch.dtype = torch.float32
                ) -> tuple[Tensor, Tensor | None]:
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch std, conv, fc, output (projected onto the label embedding if conditional)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        super().__init__()
        self.cmap_dim, self.architecture = cmap_dim, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None) -> Tensor:
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2(-ADA) discriminator: ``D(img, c)`` -> logits (N, 1). Official kwargs."""

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None):
        super().__init__()
        block_kwargs, mapping_kwargs = dict(block_kwargs or {}), dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.init_kwargs = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                                architecture=architecture, channel_base=channel_base, channel_max=channel_max,
                                num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, cmap_dim=cmap_dim,
                                block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs,
                                epilogue_kwargs=epilogue_kwargs)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        log2 = int(round(math.log2(img_resolution)))
        check(img_resolution >= 8 and 2**log2 == img_resolution,
              f"img_resolution must be a power of two >= 8. Got: {img_resolution}")
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        cmap_dim = 0 if c_dim == 0 else (ch[4] if cmap_dim is None else cmap_dim)
        self.fp16_devices: tuple[str, ...] = ("cuda",)
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        for res in self.block_resolutions:
            block = DiscriminatorBlock(ch[res] if res < img_resolution else 0, ch[res], ch[res // 2], res,
                                       use_fp16=res >= fp16_resolution, **block_kwargs, **common)
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(self, img: Tensor, c: Tensor | None = None, return_features: bool = False,
                force_fp32: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """``img``: (N, C, R, R) in [-1, 1] -> logits (N, 1); features are the block outputs."""
        check(img.ndim == 4 and img.shape[1:] == (self.img_channels, self.img_resolution, self.img_resolution),
              f"img must have shape (N, {self.img_channels}, {self.img_resolution}, {self.img_resolution}). "
              f"Got: {tuple(img.shape)}")
        half_ok = not force_fp32 and img.device.type in self.fp16_devices
        if img.device.type == "cpu":  # oneDNN's fast layout, as in the synthesis network
            img = img.contiguous(memory_format=torch.channels_last)
        x, feats = None, {}
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, torch.float16 if block.use_fp16 and half_ok else torch.float32)
            feats[f"b{res}"] = x.to(torch.float32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        logits = self.b4(x, img, cmap)
        return (logits, feats) if return_features else logits


__all__ = [
    "Generator", "Discriminator", "build_from_state_dict", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
    "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "MinibatchStdLayer", "DiscriminatorBlock",
    "DiscriminatorEpilogue", "truncate", "estimate_w_avg", "upfirdn2d", "upsample2d", "downsample2d",
    "conv2d_resample", "modulated_conv2d", "bias_act", "setup_filter", "NOISE_MODES",
]
