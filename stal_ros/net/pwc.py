# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""PWC-Net (Sun et al., CVPR 2018) in plain PyTorch, the learned flow subnet of paper §3.1.

Pyramid, Warping, Cost volume: a shared feature pyramid of L levels (level l at 1/2^l of the
input), then coarse to fine from level L down to level 2 (1/4): warp the second image's
features by the upsampled coarser flow, correlate them with the first image's features
(``cost_volume``, search range d), and let a flow estimator predict the level's flow; a dilated
context network refines the finest (1/4) flow.

Choices, where the PWC-Net paper leaves room or where we deviate:
  * Flows are carried in pixels of their own level (a level-l flow is the input-pixel flow
    divided by 2^l), so warping needs no scale factors and the multiscale loss (paper eq. 1)
    compares each level with the ground truth downsampled to that level's grid.
  * Estimators are DenseNet-style by default (each 3x3 conv's output is concatenated to its
    input, as in the PWC-Net paper's final model); ``dense=False`` gives the plain conv stack.
  * Each estimator predicts a residual added to the upsampled coarser flow (the IRR/PWC-Net+
    formulation) rather than the absolute flow: the same capacity, since the upsampled flow is
    an input of the estimator anyway, but "keep the coarser flow" is the starting point.  The
    top estimator sees the cost volume only, as in PWC-Net.  The coarser flow is upsampled
    bilinearly (x2 in size and value); the coarser estimator's features are upsampled by a
    learned 4x4 transposed conv to 2 channels (PWC-Net's "upfeat").
  * The cost volume correlates channel-normalised features by default (``cost='cosine'``:
    each pixel's feature vector is scaled to unit length, so costs are cosine similarities in
    [-1, 1]); ``cost='mean'`` is PWC-Net's mean of raw feature products.  Without pretrained
    weights (none exist for stal_ros) this matters: in the 3-level 64x64 shift test
    (test_pwc.py), 'mean' sat on the predict-the-mean plateau for 150 to over 400 Adam steps
    depending on the seed (the costs start near 0.05 and their readout weights must grow
    ~20x at Adam's fixed step size), while 'cosine' was below 1.5 px median error after 100
    steps for both seeds tried.  The volume is followed by LeakyReLU(0.1), as in PWC-Net.
  * Each pair is standardised by its joint mean and standard deviation (one value each per
    pair, so brightness constancy between the two frames is kept), and the convs get He
    initialisation, so features start at unit scale.  Measured with cost='mean' (3-level net,
    64x64 shifted textures, 300 Adam steps, one seed): PyTorch's default init left the costs
    near 1e-3 and the net on the plateau; He init with [-1, 1] inputs reached an EPE of
    2.8 px, He init with standardised inputs 0.8 px (zero flow: 4.4 px).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from stal_ros.net.correlation import cost_volume, warp

LEAK = 0.1
COSTS = ('cosine', 'mean')
# Added to the squared feature norm before normalising (bounds the gradient at zero features).
COSINE_EPS = 1e-6
# Added to the pair's standard deviation so that a flat (constant) pair does not divide by 0.
STD_EPS = 1e-2


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(LEAK))


class FeaturePyramid(nn.Module):
    """Per level: 3x3 conv stride 2, then two 3x3 convs, LeakyReLU(0.1) after each."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        levels = []
        cin = 3
        for c in channels:
            levels.append(nn.Sequential(_conv(cin, c, stride=2), _conv(c, c), _conv(c, c)))
            cin = c
        self.levels = nn.ModuleList(levels)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Map (N, 3, H, W) images to L feature maps, finest first.

        Level l (1-based) is (N, C_l, H / 2^l, W / 2^l).
        """
        out = []
        for level in self.levels:
            x = level(x)
            out.append(x)
        return out


class FlowEstimator(nn.Module):
    """3x3 conv stack (DenseNet-style or plain) predicting a 2-channel flow residual."""

    def __init__(self, cin: int, channels: Sequence[int], *, dense: bool) -> None:
        super().__init__()
        self.dense = dense
        convs = []
        c = cin
        for cout in channels:
            convs.append(_conv(c, cout))
            c = c + cout if dense else cout
        self.convs = nn.ModuleList(convs)
        self.out_channels = c
        self.predict = nn.Conv2d(c, 2, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map (N, Cin, h, w) to (flow residual (N, 2, h, w), features (N, out_channels, h, w))."""
        for conv in self.convs:
            x = torch.cat((conv(x), x), 1) if self.dense else conv(x)
        return self.predict(x), x


class ContextNetwork(nn.Module):
    """Dilated 3x3 convs (dilations 1, 2, 4, 8, 16, 1) refining the finest flow (PWC-Net §3)."""

    def __init__(self, cin: int, channels: Sequence[int], dilations: Sequence[int]) -> None:
        super().__init__()
        if len(channels) != len(dilations):
            raise ValueError(f'ContextNetwork: expected as many channels as dilations '
                             f'({len(dilations)}), got {len(channels)}')
        layers = []
        c = cin
        for cout, dil in zip(channels, dilations):
            layers.append(_conv(c, cout, dilation=dil))
            c = cout
        layers.append(nn.Conv2d(c, 2, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Map (N, Cin, h, w) to a (N, 2, h, w) flow correction."""
        return self.net(x)


class PWCNet(nn.Module):
    """PWC-Net producing flow at 1/4 of its input and the multiscale estimates.

    The widths come from ``FlowConfig`` through ``flow.build_flow_subnet`` (PWC-Net's are
    pyramid (16, 32, 64, 96, 128, 196), estimators (128, 128, 96, 64, 32), context network
    (128, 128, 128, 96, 64, 32) with dilations (1, 2, 4, 8, 16, 1)).

    Args:
        pyramid_channels: C_l of the L >= 2 feature levels, finest first.
        search_range: d of the cost volume, in feature pixels of each level.
        estimator_channels: widths of each estimator's 3x3 convs (at least one).
        dense: DenseNet-style estimators (else a plain conv stack).
        cost: ``'cosine'`` or ``'mean'`` (PWC-Net's), see the module docstring.
        context: (widths, dilations) of the context network refining the finest flow, or
            None for none.

    Attributes:
        learned: True (trained end to end with the detector, paper §3.1).
        num_levels: L, pyramid levels; inputs must be multiples of 2^L.
    """

    learned = True

    def __init__(self, *, pyramid_channels: Sequence[int], search_range: int,
                 estimator_channels: Sequence[int], dense: bool, cost: str,
                 context: tuple[Sequence[int], Sequence[int]] | None) -> None:
        super().__init__()
        channels = tuple(int(c) for c in pyramid_channels)
        if len(channels) < 2:
            raise ValueError(f'PWCNet: expected at least 2 pyramid levels (flow is estimated '
                             f'down to 1/4), got pyramid_channels={channels}')
        if not estimator_channels:
            raise ValueError('PWCNet: expected at least one estimator conv, got none')
        self.num_levels = len(channels)
        if cost not in COSTS:
            raise ValueError(f'PWCNet: expected cost in {list(COSTS)}, got {cost!r}')
        self.cost = cost
        self.search_range = int(search_range)
        self.pyramid = FeaturePyramid(channels)
        num_costs = (2 * self.search_range + 1) ** 2
        estimators, upfeats = [], []
        # Estimators for levels L .. 2 (coarse to fine); index 0 is the top level, which has no
        # coarser flow or features to take in.
        for i, level in enumerate(range(self.num_levels, 1, -1)):
            # Top level: the cost volume only (as in PWC-Net); below: + f1, flow, upfeat.
            cin = num_costs if i == 0 else num_costs + channels[level - 1] + 4
            est = FlowEstimator(cin, estimator_channels, dense=dense)
            estimators.append(est)
            if level > 2:
                upfeats.append(nn.ConvTranspose2d(est.out_channels, 2, 4, 2, 1))
        self.estimators = nn.ModuleList(estimators)
        self.upfeats = nn.ModuleList(upfeats)
        self.context = None
        if context is not None:
            self.context = ContextNetwork(estimators[-1].out_channels + 2, *context)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (MSRA) initialisation for LeakyReLU(0.1), zero biases, as PWC-Net.

        PyTorch's default conv initialisation shrinks activations layer by layer; the cost
        volume, a product of two such features, then starts near zero and training stalls.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=LEAK, nonlinearity='leaky_relu')
                nn.init.zeros_(m.bias)

    def correlate(self, f1: Tensor, f2: Tensor) -> Tensor:
        """Cost volume (N, (2d + 1)^2, h, w) of (N, C, h, w) features, per ``self.cost``."""
        if self.cost == 'mean':
            return cost_volume(f1, f2, self.search_range)
        f1 = f1 * torch.rsqrt(f1.pow(2).sum(1, keepdim=True) + COSINE_EPS)
        f2 = f2 * torch.rsqrt(f2.pow(2).sum(1, keepdim=True) + COSINE_EPS)
        # cost_volume averages over channels; times C gives the sum, the cosine similarity.
        return cost_volume(f1, f2, self.search_range) * f1.shape[1]

    def forward(self, img1: Tensor, img2: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Estimate the flow from ``img1`` to ``img2``.

        Args:
            img1: (N, 3, H, W) float RGB in [0, 1], H and W multiples of 2^L (``FlowSubnet``
                resizes to the configured ``flow.input_size``, which the config checks).
            img2: (N, 3, H, W) same.

        Returns:
            ``(flow, pyramid)``: ``pyramid`` holds the L - 1 estimates of levels 2..L, finest
            (H/4, W/4) first, each (N, 2, H/2^l, W/2^l) in pixels of its own level (the
            finest one after the context network); ``flow`` is ``pyramid[0]``.
        """
        n = img1.shape[0]
        both = torch.stack((img1, img2), 1)                                # (N, 2, 3, H, W)
        mean = both.mean((1, 2, 3, 4), keepdim=True)
        std = both.std((1, 2, 3, 4), keepdim=True)
        both = (both - mean) / (std + STD_EPS)
        feats = self.pyramid(both.transpose(0, 1).reshape(2 * n, *both.shape[2:]))
        # feats: L x (2N, C_l, h, w), images 1 in [:N], images 2 in [N:]
        flow = up_flow = up_feat = None
        estimates = []
        hidden = None
        for i, level in enumerate(range(self.num_levels, 1, -1)):
            f1, f2 = feats[level - 1][:n], feats[level - 1][n:]
            if up_flow is None:
                x = F.leaky_relu(self.correlate(f1, f2), LEAK)
            else:
                costs = self.correlate(f1, warp(f2, up_flow))
                x = torch.cat((F.leaky_relu(costs, LEAK), f1, up_flow, up_feat), 1)
            residual, hidden = self.estimators[i](x)
            flow = residual if up_flow is None else up_flow + residual
            estimates.append(flow)
            if level > 2:
                # Level l+1 -> l: twice the size, and twice the displacement in level pixels.
                up_flow = 2.0 * F.interpolate(flow, scale_factor=2.0, mode='bilinear',
                                              align_corners=False)
                up_feat = self.upfeats[i](hidden)
        if self.context is not None:
            flow = flow + self.context(torch.cat((hidden, flow), 1))
            estimates[-1] = flow
        pyramid = estimates[::-1]
        return pyramid[0], pyramid
