"""StyleGAN3 generator, configs T and R (Karras et al., "Alias-Free Generative
Adversarial Networks", arXiv:2106.12423), compatible with NVIDIA's checkpoints.

Parameter/buffer names and constructor arguments follow NVlabs/stylegan3
(`training/networks_stylegan3.py`), so `_init_kwargs` and `state_dict()` of an
official pickle load 1:1. The filtered leaky ReLU (Sec. 3.2, App. C) is plain
PyTorch: zero-insertion upsampling as a strided depthwise transposed convolution,
the nonlinearity, then a strided depthwise low-pass convolution, in channels-last
memory. Departures, all equal up to float rounding: the modulated convolution
scales activations instead of building per-sample weights, separable filters run
as one 2-D (outer product) kernel, and the activation gain is folded into the
downsampling filter. Half precision is used on CUDA only, as officially.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import check

# ----------------------------------------------------------------------------
# Filter design (Appendix C.1): Kaiser-windowed sinc (separable) or jinc (radial).


def _kaiser_beta(atten_db: float) -> float:
    """Kaiser window shape for a stop-band attenuation in dB (Kaiser's formula)."""
    if atten_db > 50:
        return 0.1102 * (atten_db - 8.7)
    if atten_db > 21:
        return 0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21)
    return 0.0


def _kaiser_window(numtaps: int, width: float, fs: float) -> np.ndarray:
    """Kaiser window for `numtaps` taps and a transition band `width` (Hz) at rate `fs`."""
    atten = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95
    return np.kaiser(numtaps, _kaiser_beta(atten))


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> Tensor | None:
    """Low-pass FIR filter normalised to unit DC gain.

    Returns None for a single tap (identity), a `(numtaps,)` separable Kaiser
    filter (equivalent to `scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)`),
    or a `(numtaps, numtaps)` radially symmetric jinc filter, all float32.
    """
    check(numtaps >= 1, f"Filter needs at least one tap. Got: {numtaps}")
    if numtaps == 1:
        return None
    t = np.arange(numtaps) - (numtaps - 1) / 2
    window = _kaiser_window(numtaps, width, fs)
    if not radial:
        c = cutoff / (fs / 2)
        f = c * np.sinc(c * t) * window
        return torch.as_tensor(f / f.sum(), dtype=torch.float32)
    x = t / fs
    r = torch.as_tensor(np.hypot(*np.meshgrid(x, x)), dtype=torch.float64)
    # jinc(r) = J1(2 pi fc r) / (pi r); its limit at r = 0 is fc.
    jinc = torch.special.bessel_j1(2 * cutoff * math.pi * r) / (math.pi * r)
    f = torch.where(r == 0, torch.full_like(r, cutoff), jinc).numpy()
    f = f * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# ----------------------------------------------------------------------------
# Resampling and the filtered leaky ReLU (upfirdn: upsample, FIR, downsample).


def _crop_args(lo: int, hi: int, taps: int) -> tuple[int, int, int]:
    """Split the edge adjustment of a full transposed convolution (`lo`, `hi`,
    negative = crop) into the symmetric crop the convolution itself can do and a rest."""
    sym = max(0, min(-lo, -hi, taps - 1))  # oneDNN refuses crops beyond taps - 1
    return sym, lo + sym, hi + sym


def _depthwise_kernel(f: Tensor | None, channels: int, scale: float, like: Tensor) -> Tensor:
    """(C, 1, L, L) kernel from a 1-D separable filter (outer product) or a 2-D one.

    One 2-D depthwise pass beats two 1-D passes on the CPU: oneDNN's depthwise
    kernels (channels-last) are several times faster than single-channel ones."""
    if f is None:
        f = torch.ones([1], device=like.device)
    k = torch.outer(f, f) if f.ndim == 1 else f
    return (k * scale).to(like.dtype).expand(channels, 1, *k.shape)


def upsample2d(x: Tensor, f: Tensor | None, up: int, padding: list[int]) -> Tensor:
    """Zero-insert by `up`, pad by `padding = [x0, x1, y0, y1]` (negative crops),
    then convolve with `f` (1-D separable or 2-D) at gain `up**2`.

    x: (B, C, H, W) -> (B, C, H*up + y0 + y1 - taps + 1, W*up + x0 + x1 - taps + 1).
    """
    px0, px1, py0, py1 = padding
    if f is None and up == 1:
        return F.pad(x, padding) if any(padding) else x
    taps = 1 if f is None else f.shape[-1]
    # A strided transposed conv is zero insertion + convolution with the unflipped
    # kernel, offset by taps - 1; pad/crop the rest.
    sx, xlo, xhi = _crop_args(px0 - taps + 1, up + px1 - taps, taps)
    sy, ylo, yhi = _crop_args(py0 - taps + 1, up + py1 - taps, taps)
    k = _depthwise_kernel(f, x.shape[1], up**2, x)
    x = F.conv_transpose2d(x, k, stride=up, padding=(sy, sx), groups=x.shape[1])
    return F.pad(x, [xlo, xhi, ylo, yhi]) if xlo or xhi or ylo or yhi else x


def downsample2d(x: Tensor, f: Tensor | None, down: int, gain: float = 1.0) -> Tensor:
    """Convolve with `f` (1-D separable or 2-D, no padding) times `gain` and keep
    every `down`-th sample. x: (B, C, H, W) -> (B, C, (H - taps) // down + 1, ...)."""
    if f is None and gain == 1:
        return x[:, :, ::down, ::down] if down > 1 else x
    if f is not None:
        f = f.flip(list(range(f.ndim)))  # true convolution, as upfirdn2d does
    k = _depthwise_kernel(f, x.shape[1], gain, x)
    return F.conv2d(x, k, stride=down, groups=x.shape[1])


def filtered_lrelu(x: Tensor, up_filter: Tensor | None, down_filter: Tensor | None,
                   bias: Tensor, up: int, down: int, padding: list[int],
                   gain: float, slope: float, clamp: float | None) -> Tensor:
    """Alias-free nonlinearity (Sec. 3.2): add bias, upsample, leaky ReLU times
    `gain`, clamp to [-clamp, clamp], low-pass and downsample. x: (B, C, H, W)."""
    x = x + bias.to(x.dtype).view(1, -1, 1, 1)
    x = upsample2d(x, up_filter, up, padding)
    # The upsampled tensor is the largest one: work in place on it unless autograd
    # needs the intermediates. The gain is folded into the (linear) downsampling,
    # saving a pass: clamp(g * y, c) = g * clamp(y, c / g).
    inplace = not (torch.is_grad_enabled() and x.requires_grad)
    if slope != 1:
        x = F.leaky_relu(x, slope, inplace=inplace)
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp / gain, clamp / gain) if inplace else x.clamp(-clamp / gain, clamp / gain)
    return downsample2d(x, down_filter, down, gain)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool,
                     padding: int, input_gain: Tensor | None) -> Tensor:
    """Style-modulated convolution (StyleGAN2 Eq. 1-3, StyleGAN3 App. D).

    x: (B, I, H, W), weight: (O, I, k, k), styles: (B, I), input_gain: scalar.
    Instead of per-sample weights, styles scale the input channels and the
    demodulation coefficients scale the output channels; mathematically the same.
    """
    if demodulate:  # pre-normalisation for numerical range, as in the official code
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()  # one scalar over the whole batch
    scale = styles if input_gain is None else styles * input_gain
    x = x * scale.to(x.dtype).view(*scale.shape, 1, 1)
    y = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum([2, 3]).t() + 1e-8).rsqrt()  # (B, O)
        y = y * dcoefs.to(y.dtype).view(*dcoefs.shape, 1, 1)
    return y


# ----------------------------------------------------------------------------
# Hyper-parameters (defaults of the official classes) and the layer layout.


@dataclass
class MappingConfig:
    """Options of the official MappingNetwork (`mapping_kwargs`)."""

    num_layers: int = 2
    lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    freeze_layers: int = 0  # training option (Freeze-M); only stops gradients here
    freeze_embed: bool = False


@dataclass
class SynthesisConfig:
    """Options of the official SynthesisNetwork and SynthesisLayer (flat `**synthesis_kwargs`)."""

    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14  # excluding the Fourier input and ToRGB
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10  # extra pixels around the image in the early layers
    output_scale: float = 0.25
    num_fp16_res: int = 4
    conv_kernel: int = 3  # 1 for config R
    filter_size: int = 6  # taps per lower-resolution sample
    lrelu_upsampling: int = 2
    use_radial_filters: bool = False  # True for config R
    conv_clamp: float | None = 256
    magnitude_ema_beta: float = 0.999
    use_fp16: bool = True  # not an official option: False keeps every layer in float32


@dataclass(frozen=True)
class LayerSpec:
    """Geometry of one synthesis layer (Sec. 3.1 / App. F of the paper)."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float


def synthesis_layout(cfg: SynthesisConfig, img_resolution: int,
                     img_channels: int) -> list[LayerSpec]:
    """Per-layer cutoffs, stop bands, sampling rates and channels (geometric
    progression, App. F). Index 0 describes the Fourier input (its `out_*` fields);
    entries 1.. are the layers L0 ... L{num_layers}, the last one being ToRGB."""
    n = cfg.num_layers
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = img_channels
    specs = [LayerSpec("input", False, False, False, int(channels[0]), int(channels[0]),
                       int(sizes[0]), int(sizes[0]), int(rates[0]), int(rates[0]),
                       cutoffs[0], cutoffs[0], half_widths[0], half_widths[0])]
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        use_fp16 = bool(cfg.use_fp16 and rates[idx] * 2**cfg.num_fp16_res > img_resolution)
        specs.append(LayerSpec(
            f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}", idx == n, idx >= n - cfg.num_critical,
            use_fp16, int(channels[prev]), int(channels[idx]), int(sizes[prev]), int(sizes[idx]),
            int(rates[prev]), int(rates[idx]), float(cutoffs[prev]), float(cutoffs[idx]),
            float(half_widths[prev]), float(half_widths[idx])))
    return specs


# ----------------------------------------------------------------------------
# Modules.


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer with optional leaky ReLU (gain sqrt 2)."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool = False,
                 lr_multiplier: float = 1.0, weight_init: float = 1.0,
                 bias_init: float | list[float] = 0.0) -> None:
        super().__init__()
        self.lrelu = lrelu
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        bias = torch.tensor(np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]))
        self.bias = nn.Parameter(bias / lr_multiplier)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, in_features) -> (B, out_features)."""
        x = torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t())
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.lrelu else x


def _normalize_2nd_moment(x: Tensor) -> Tensor:
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """z (+ class label c) -> w, broadcast to `num_ws` slots, with truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, cfg: MappingConfig) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = cfg.num_layers
        self.w_avg_beta = cfg.w_avg_beta
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * cfg.num_layers
        for idx in range(cfg.num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], lrelu=True,
                                        lr_multiplier=cfg.lr_multiplier)
            layer.requires_grad_(idx >= cfg.freeze_layers)
            setattr(self, f"fc{idx}", layer)
        if self.embed is not None:
            self.embed.requires_grad_(not cfg.freeze_embed)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Tensor:
        """z: (B, z_dim), c: (B, c_dim) or None -> ws: (B, num_ws, w_dim)."""
        check(z.ndim == 2 and z.shape[1] == self.z_dim,
              f"z must have shape (B, {self.z_dim}). Got: {tuple(z.shape)}")
        x = _normalize_2nd_moment(z.to(torch.float32))
        if self.embed is not None:
            check(c is not None and c.ndim == 2 and c.shape == (z.shape[0], self.c_dim),
                  f"c must have shape ({z.shape[0]}, {self.c_dim}). "
                  f"Got: {None if c is None else tuple(c.shape)}")
            y = _normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # (B, num_ws, w_dim)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg.lerp(x[:, :cut], truncation_psi)
            x = torch.cat([head, x[:, cut:]], dim=1)
        return x


class SynthesisInput(nn.Module):
    """Fourier-feature input (Sec. 3.1): sinusoids of random frequencies within
    the first layer's band, rotated/translated by w and by the user `transform`."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float,
                 bandwidth: float) -> None:
        super().__init__()
        self.channels, self.size = channels, size
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn([channels, 2])  # uniform in a disc after the radial remap below
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        # Inverse of the user transform of the output image (identity in checkpoints).
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]) - 0.5)

    def _transforms(self, w: Tensor) -> Tensor:
        """(B, w_dim) -> (B, 3, 3): w's rotation, then its translation, then the user one."""
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        one, zero = torch.ones_like(t[:, 0]), torch.zeros_like(t[:, 0])
        m_r = torch.stack([t[:, 0], -t[:, 1], zero, t[:, 1], t[:, 0], zero, zero, zero, one], 1)
        m_t = torch.stack([one, zero, -t[:, 2], zero, one, -t[:, 3], zero, zero, one], 1)
        return m_r.view(-1, 3, 3) @ m_t.view(-1, 3, 3) @ self.transform.unsqueeze(0)

    def forward(self, w: Tensor) -> Tensor:
        """w: (B, w_dim) -> (B, channels, size, size) float32."""
        transforms = self._transforms(w)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # (B, C, 2)
        # Fade out frequencies a user transform pushes beyond the band.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device, dtype=w.dtype)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = grid.view(1, self.size, self.size, 1, 2) @ freqs.transpose(1, 2).view(-1, 1, 1, 2, self.channels)
        x = x.squeeze(3) + phases.view(-1, 1, 1, self.channels)  # (B, H, W, C)
        x = torch.sin(x * (2 * math.pi)) * amplitudes.view(-1, 1, 1, self.channels)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        # (B, C, H, W) view of channels-last memory, the fast layout for the layers
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated conv followed by the filtered leaky ReLU (or, for ToRGB, bias + clamp)."""

    def __init__(self, w_dim: int, spec: LayerSpec, cfg: SynthesisConfig) -> None:
        super().__init__()
        self.spec = spec
        self.is_torgb, self.use_fp16 = spec.is_torgb, spec.use_fp16
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.conv_kernel = 1 if spec.is_torgb else cfg.conv_kernel
        self.conv_clamp = cfg.conv_clamp
        self.magnitude_ema_beta = cfg.magnitude_ema_beta
        tmp_rate = max(spec.in_sampling_rate, spec.out_sampling_rate) * (1 if spec.is_torgb else cfg.lrelu_upsampling)
        self.up_factor = int(np.rint(tmp_rate / spec.in_sampling_rate))
        self.down_factor = int(np.rint(tmp_rate / spec.out_sampling_rate))
        check(spec.in_sampling_rate * self.up_factor == tmp_rate
              and spec.out_sampling_rate * self.down_factor == tmp_rate,
              f"Layer {spec.name}: sampling rates must divide {tmp_rate}. "
              f"Got: {spec.in_sampling_rate}, {spec.out_sampling_rate}")
        self.up_taps = cfg.filter_size * self.up_factor if self.up_factor > 1 and not spec.is_torgb else 1
        self.down_taps = cfg.filter_size * self.down_factor if self.down_factor > 1 and not spec.is_torgb else 1
        self.down_radial = cfg.use_radial_filters and not spec.is_critically_sampled

        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        k = self.conv_kernel
        self.weight = nn.Parameter(torch.randn([spec.out_channels, spec.in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, spec.in_cutoff, spec.in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, spec.out_cutoff, spec.out_half_width * 2, tmp_rate, radial=self.down_radial))
        self.padding = self._padding()

    def _padding(self) -> list[int]:
        """[x0, x1, y0, y1] so that the output has `out_size` samples, placed by the
        symmetric sample-location convention of App. C.3."""
        s = self.spec
        total = (s.out_size - 1) * self.down_factor + 1
        total -= (s.in_size + self.conv_kernel - 1) * self.up_factor
        total += self.up_taps + self.down_taps - 2
        lo = (total + self.up_factor) // 2
        return [lo, total - lo, lo, total - lo]

    def forward(self, x: Tensor, w: Tensor, force_fp32: bool = False, update_emas: bool = False) -> Tensor:
        """x: (B, in_channels, in_size, in_size), w: (B, w_dim) -> (B, out_channels, out_size, out_size)."""
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel**2)
        half = self.use_fp16 and not force_fp32 and x.device.type == "cuda"
        x = x.to(torch.float16 if half else torch.float32)
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(
            x, self.up_filter, self.down_filter, self.bias, self.up_factor, self.down_factor, self.padding,
            gain=1.0 if self.is_torgb else math.sqrt(2), slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"{s.in_channels}->{s.out_channels}, {s.in_size}->{s.out_size} px, "
                f"up={self.up_factor}, down={self.down_factor}, radial={self.down_radial}, fp16={self.use_fp16}")


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, img_channels, R, R): Fourier input + layers."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = cfg.num_layers + 2
        self.output_scale = cfg.output_scale
        specs = synthesis_layout(cfg, img_resolution, img_channels)
        first = specs[0]
        self.input = SynthesisInput(w_dim, first.out_channels, first.out_size,
                                    first.out_sampling_rate, first.out_cutoff)
        self.layer_names: list[str] = []
        for spec in specs[1:]:
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, cfg))
            self.layer_names.append(spec.name)

    def forward(self, ws: Tensor, noise_mode: str = "const", return_features: bool = False,
                force_fp32: bool = False, update_emas: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """ws: (B, num_ws, w_dim) -> image (B, C, R, R) float32, plus, with
        `return_features`, a dict layer name -> float32 output map ("input", "L0_...",
        ...; early maps include the margin). `noise_mode` is accepted and ignored:
        StyleGAN3 has no noise inputs."""
        check(ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim),
              f"ws must have shape (B, {self.num_ws}, {self.w_dim}). Got: {tuple(ws.shape)}")
        check(noise_mode in ("random", "const", "none"),
              f"noise_mode must be 'random', 'const' or 'none'. Got: {noise_mode!r}")
        slots = ws.to(torch.float32).unbind(dim=1)
        x = self.input(slots[0])
        feats = {"input": x} if return_features else {}
        for name, w in zip(self.layer_names, slots[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)
            if return_features:
                feats[name] = x.to(torch.float32)
        img = (x * self.output_scale if self.output_scale != 1 else x).to(torch.float32).contiguous()
        return (img, feats) if return_features else img


def _make_config(cls: type, kwargs: dict) -> MappingConfig | SynthesisConfig:
    """Build a config dataclass, naming any option the official class would not take."""
    unknown = sorted(set(kwargs) - set(cls.__dataclass_fields__))
    if unknown:  # TypeError, as Python raises for any unexpected keyword argument
        raise TypeError(f"Unknown StyleGAN3 option(s) for {cls.__name__}. Got: {unknown}")
    return cls(**kwargs)


class Generator(nn.Module):
    """StyleGAN3 generator: `G(z, c)` = `G.synthesis(G.mapping(z, c))`.

    Takes the official constructor arguments (`_init_kwargs` of NVIDIA's pickles):
    `mapping_kwargs` go to `MappingConfig`, the rest to `SynthesisConfig`.
    """

    family = "stylegan3"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, **synthesis_kwargs) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs or {}),
                                **synthesis_kwargs)  # enough to rebuild this network
        synthesis_cfg = _make_config(SynthesisConfig, synthesis_kwargs)
        mapping_cfg = _make_config(MappingConfig, dict(mapping_kwargs or {}))
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, synthesis_cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, mapping_cfg)

    @property
    def w_avg(self) -> Tensor:
        """Running mean of w, the truncation centre: (w_dim,)."""
        return self.mapping.w_avg

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const",
                force_fp32: bool = False, update_emas: bool = False) -> Tensor:
        """z: (B, z_dim) -> image (B, img_channels, R, R), float32, roughly [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas)

    @torch.no_grad()
    def set_input_transform(self, translate: tuple[float, float] = (0.0, 0.0), rotate_deg: float = 0.0) -> None:
        """Shift the output image by `translate` (fractions of its width and height) and
        rotate it by `rotate_deg` degrees, by storing the inverse matrix in
        `synthesis.input.transform` as NVIDIA's gen_images.py does. Defaults restore identity."""
        a = math.radians(rotate_deg)
        m = np.array([[math.cos(a), math.sin(a), translate[0]],
                      [-math.sin(a), math.cos(a), translate[1]],
                      [0.0, 0.0, 1.0]])
        buf = self.synthesis.input.transform
        buf.copy_(torch.from_numpy(np.linalg.inv(m)).to(buf))
