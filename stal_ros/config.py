# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""One typed configuration for every stage of stal_ros (stdlib only).

Each stage has a frozen dataclass whose fields carry their default, a description and the
accepted range or choices (``param(...)``).  Validation happens in ``__post_init__`` so an
invalid value can never exist in a config object; the error names the parameter
(``tubes.iou_threshold`` when built from a file or ROS parameters, where dotted names come
from the section's place in the tree), the value and what was expected.  ROS parameters,
training YAML files and tests all build these classes; none of them re-states a default, and
the model's parts take plain values that only the builders read from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from stal_ros.config_base import ConfigBase, ConfigError, param

__all__ = ['ConfigBase', 'ConfigError', 'param', 'StalConfig', 'DetectorConfig', 'TubeConfig',
           'TrimConfig', 'FramesConfig', 'FlowConfig', 'BackboneConfig', 'FusionConfig',
           'HeadConfig', 'PostprocessConfig', 'OptimConfig', 'AugmentConfig', 'TrainConfig']

# --------------------------------------------------------------------------------------------
# ⑦ Online tubes (ROAD, Singh et al. 2017) and their offline post-processing for evaluation.
# --------------------------------------------------------------------------------------------

EDGE_COSTS = ('score', 'scrSim', 'scrMinusSim')


@dataclass(frozen=True)
class TubeConfig(ConfigBase):
    """Online tube linking, per camera and per class (ROAD §3, paper §4.7).

    The defaults of ``score_threshold``, ``jump_gap`` and ``min_publish_length`` were chosen
    on the motion benchmark's validation split (100 videos, the shipped model): ROAD's
    settings (0.01, 3, 1) keep a tube alive on an actor before and after it acts, and gave
    video-mAP@0.5 0.52 there against 0.68 with these (0.1, 2, 4); the test split is scored
    only with the chosen ones.
    """

    score_threshold: float = param(
        0.1, 'Boxes of a class with a score at or below this are ignored by the linker (ROAD '
        'links from 0.001; lower values keep tubes alive on idle actors).', ge=0.0, le=1.0)
    nms_iou: float = param(0.45, 'IoU of the per-class NMS applied before linking.',
                           gt=0.0, le=1.0)
    top_k: int = param(10, 'Boxes kept per class and frame after NMS.', ge=1, read_only=True)
    iou_threshold: float = param(
        0.1, 'A live tube may only take a box whose IoU with its last box is at least this.',
        ge=0.0, le=1.0)
    edge_cost: str = param(
        'score', "Edge score used to pick a tube's box: 'score' (box score), 'scrSim' "
        "(1 - L2 distance of class-score vectors) or 'scrMinusSim' (their sum).",
        choices=EDGE_COSTS, read_only=True)
    jump_gap: int = param(
        2, 'A tube unmatched for more than this many consecutive frames finishes.', ge=0,
        read_only=True)
    score_window: int = param(
        5, 'Live tubes are ordered by the mean of their last this-many box scores.', ge=1,
        read_only=True)
    max_history: int = param(
        300, 'Most recent per-frame entries kept per tube (bounds memory and message size).',
        ge=1, read_only=True)
    smooth_memory: float = param(
        0.6, 'Online score smoothing (stal_ros.tubes.smoothing): weight on the past of each '
        "actor track's moving average of class scores (0: off).", ge=0.0, lt=1.0)
    smooth_weight: float = param(
        0.5, "A box's smoothed score is this times its own score plus the rest times its "
        "track's average score of its class, if that is lower (1: own score only).", ge=0.0,
        le=1.0)
    min_publish_length: int = param(
        4, 'Tubes shorter than this many frames are tracked but not reported as active, and '
        'dropped when they finish.', ge=1)


@dataclass(frozen=True)
class TrimConfig(ConfigBase):
    """Offline tube post-processing for evaluation (ROAD's two-label Viterbi + min length)."""

    enabled: bool = param(True, 'Trim tubes temporally with the two-label Viterbi.')
    alpha: float = param(3.0, 'Label-switch penalty of the Viterbi (ROAD uses 3 or 5).', ge=0.0)
    min_length: int = param(8, 'Tubes shorter than this many frames are dropped.', ge=1)


# --------------------------------------------------------------------------------------------
# ① Frames and ② flow subnet (paper §3.1-3.2).
# --------------------------------------------------------------------------------------------

FLOW_KINDS = ('pwc', 'dis', 'farneback')
DIS_PRESETS = ('ultrafast', 'fast', 'medium')
FRAME_MODES = ('causal', 'centred')
PWC_COSTS = ('cosine', 'mean')


@dataclass(frozen=True)
class FramesConfig(ConfigBase):
    """Which frames form a clip (paper §3: K consecutive frames)."""

    num_frames: int = param(3, 'K, frames per clip (the paper uses 3).', ge=2, read_only=True)
    mode: str = param(
        'causal', "'causal': frames t-K+1..t, localise t (no latency). 'centred': the paper's "
        't-1, t, t+1 for K=3, localise the middle frame, which is reported (K-1)//2 frames '
        'late.', choices=FRAME_MODES, read_only=True)
    pad: bool = param(
        True, "Fill the clips of a stream's first frames by repeating its first frame (and, "
        'when a finite stream such as a bag or a video ends, its last frames by repeating the '
        'last one), so every frame is localised; False: frames without K real frames around '
        'them get no result.', read_only=True)


@dataclass(frozen=True)
class FlowConfig(ConfigBase):
    """Optical-flow subnet applied to each adjacent pair of the clip (paper §3.1)."""

    kind: str = param('pwc', "'pwc' (learned PWC-Net, trained end to end) or a classical "
                      "OpenCV flow: 'dis' or 'farneback' (not learned, CPU).",
                      choices=FLOW_KINDS, read_only=True)
    input_size: tuple[int, int] = param(
        (320, 320), 'Height, width the frames are resized to for the flow (multiples of 64 '
        'for PWC-Net; paper: 320x320).', ge=64, read_only=True)
    pyramid_channels: tuple[int, ...] = param(
        (16, 32, 64, 96, 128, 196), 'PWC-Net feature-pyramid channels, finest level first '
        '(6 levels in the paper).', ge=1, read_only=True)
    search_range: int = param(4, 'PWC-Net cost-volume search range d (displacements -d..d).',
                              ge=1, le=8, read_only=True)
    context_network: bool = param(True, 'Refine the final PWC-Net flow with the dilated '
                                  'context network.', read_only=True)
    dis_preset: str = param('fast', 'OpenCV DIS preset when kind is dis.',
                            choices=DIS_PRESETS, read_only=True)
    dis_finest_scale: int = param(
        -1, 'Finest pyramid level DIS estimates (0: input_size, 1: half of it, ...); -1: the '
        "preset's own (2 for ultrafast and fast, 1 for medium). Small actors need 0: at "
        '128 x 128 the fast preset, working at 32 x 32, misses half their motion.', ge=-1,
        le=6, read_only=True)
    estimator_channels: tuple[int, ...] = param(
        (128, 128, 96, 64, 32), "Widths of each PWC-Net flow estimator's 3x3 convs (PWC-Net: "
        '128, 128, 96, 64, 32); with dense estimators they dominate the cost.', ge=1,
        read_only=True)
    dense: bool = param(True, 'DenseNet-style estimators (each conv output concatenated to its '
                        'input, the PWC-Net paper) instead of a plain conv stack.',
                        read_only=True)
    context_channels: tuple[int, ...] = param(
        (128, 128, 128, 96, 64, 32), "Widths of the context network's dilated 3x3 convs.",
        ge=1, read_only=True)
    context_dilations: tuple[int, ...] = param(
        (1, 2, 4, 8, 16, 1), 'Dilations of those convs (one per width).', ge=1,
        read_only=True)
    cost: str = param(
        'cosine', "Cost volume: 'cosine' (channel-normalised features, trains from scratch) or "
        "'mean' (PWC-Net's mean of raw feature products).", choices=PWC_COSTS, read_only=True)
    compensate_camera: bool = param(
        False, "Subtract each flow's median vector (the camera's own translation when the "
        'background fills most of the view) before the flows are fused into the motion image, '
        'so that the motion stream sees how actors move relative to the scene, not how the '
        'robot turns. Not in the paper; off for its models.', read_only=True)
    loss_weights: tuple[float, ...] = param(
        (0.32, 0.08, 0.02, 0.01, 0.005), 'Multiscale flow-loss weights alpha_l, coarsest '
        'estimated level first as in PWC-Net (alpha_6 .. alpha_2); the last weight belongs to '
        'the finest estimate (1/4 of flow.input_size) and a network with fewer levels uses '
        'the last ones. Each level sums its end-point errors in pixels of the ground-truth '
        'frames (paper eq. 1); a uniform error then weighs 44, 22, 11, 11, 11 % from the '
        'finest level up.', ge=0.0)

    def check(self) -> None:
        """PWC-Net halves the resolution once per level; one loss weight per estimated level."""
        if self.kind == 'pwc':
            step = 2 ** len(self.pyramid_channels)
            if any(s % step for s in self.input_size):
                self.fail('input_size', f'expected multiples of {step} for a '
                          f'{len(self.pyramid_channels)}-level PWC-Net')
            if len(self.pyramid_channels) < 2:
                self.fail('pyramid_channels', 'expected at least 2 levels (flow is estimated '
                          'down to 1/4)')
            if len(self.loss_weights) < len(self.pyramid_channels) - 1:
                self.fail('loss_weights', f'expected at least {len(self.pyramid_channels) - 1} '
                          'weights, one per estimated level (levels 2 .. '
                          f'{len(self.pyramid_channels)})')
        if len(self.context_channels) != len(self.context_dilations):
            self.fail('context_dilations', f'expected {len(self.context_channels)} values, one '
                      'per context_channels entry')
        if not self.estimator_channels:
            self.fail('estimator_channels', 'expected at least one conv')


# --------------------------------------------------------------------------------------------
# ③ Backbone, ④ fusion, ⑤ head and priors, ⑥ post-processing, and the detector that holds
# them (paper §3.3-3.4).
# --------------------------------------------------------------------------------------------

BACKBONE_KINDS = ('vgg16_rfb', 'lite')
FUSION_KINDS = ('concat', 'sum', 'average', 'stfp', 'none')
PRECISIONS = ('fp32', 'fp16', 'bf16')
NUM_SCALES = 6
# Smallest square input for which every one of the six maps has at least one cell.  For
# vgg16_rfb the last two RFB-Net layers are unpadded 3x3 convs (5 -> 3 -> 1 at 300), which
# needs a 268-pixel input; the lite backbone halves with padded stride-2 convs only.
MIN_INPUT_SIZE = {'vgg16_rfb': 268, 'lite': 32}
UCF101_24_CLASSES = (
    'Basketball', 'BasketballDunk', 'Biking', 'CliffDiving', 'CricketBowling', 'Diving',
    'Fencing', 'FloorGymnastics', 'GolfSwing', 'HorseRiding', 'IceDancing', 'LongJump',
    'PoleVault', 'RopeClimbing', 'SalsaSpin', 'SkateBoarding', 'Skiing', 'Skijet',
    'SoccerJuggling', 'Surfing', 'TennisSwing', 'TrampolineJumping', 'VolleyballSpiking',
    'WalkingWithDog')


@dataclass(frozen=True)
class BackboneConfig(ConfigBase):
    """The backbone shared by the RGB and the flow path (paper §3.3.1-3.3.2)."""

    kind: str = param(
        'vgg16_rfb', "'vgg16_rfb': DeepLab-VGG16 + RFB-Net extra layers, six maps with "
        "{512, 1024, 512, 256, 256, 256} channels (the paper). 'lite': depthwise-separable "
        'network with the same six-scale interface for CPU robots.', choices=BACKBONE_KINDS,
        read_only=True)
    width: float = param(
        1.0, 'Channel multiplier applied to every layer (1.0 = the paper for vgg16_rfb; '
        'lite at 1.0 has {128, 256, 256, 128, 128, 128} output channels).', gt=0.0, le=4.0,
        read_only=True)
    batch_norm: bool = param(
        False, 'vgg16_rfb: batch norm after every VGG16 conv (the paper has none; the RFB '
        'extra layers always have it). lite: batch norm after every conv (true) or biased '
        'convs without normalisation (false). Batch-norm statistics are kept per stream (RGB, '
        'flow) while the weights are shared.', read_only=True)


@dataclass(frozen=True)
class FusionConfig(ConfigBase):
    """Multiscale fusion of the RGB and flow feature maps (paper §3.3.3, Table 2, eq. 7)."""

    kind: str = param(
        'concat', "'concat' (M-Concat, the paper's default), 'sum' (M-Sum), 'average' "
        "(M-Average), 'stfp' (top-down pyramid, eq. 7) or 'none' (RGB only; the flow subnet is "
        'not run).', choices=FUSION_KINDS, read_only=True)


@dataclass(frozen=True)
class HeadConfig(ConfigBase):
    """SSD/RFB default boxes and prediction head (paper §3.4; SSD300/RFB300 priors)."""

    scales: tuple[float, ...] = param(
        (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05), 'Prior sizes as a fraction of the input '
        'side, one per scale plus one (SSD300 min/max sizes 30, 60, ..., 315 over 300); scale '
        'i has square priors s_i and sqrt(s_i * s_i+1).', gt=0.0, read_only=True)
    aspect_ratios: tuple[float, ...] = param(
        (2.0, 3.0), 'Extra aspect ratios r >= 1 (each adds a box of ratio r and one of 1/r); '
        'scale i uses the first ratios_per_scale[i] of them.', ge=1.0, read_only=True)
    ratios_per_scale: tuple[int, ...] = param(
        (2, 2, 2, 2, 1, 1), 'How many of aspect_ratios each of the six scales uses (RFB300: '
        '2, 2, 2, 2, 1, 1; SSD300: 1, 2, 2, 2, 1, 1).', ge=0, read_only=True)
    variances: tuple[float, float] = param(
        (0.1, 0.2), 'Box-encoding variances for centre and size (SSD).', gt=0.0,
        read_only=True)
    clip_priors: bool = param(True, 'Clip the default boxes to the image.', read_only=True)

    def check(self) -> None:
        """One scale per backbone map, increasing sizes, enough ratios."""
        if len(self.scales) != NUM_SCALES + 1:
            self.fail('scales', f'expected {NUM_SCALES + 1} values (one per scale plus one), '
                      f'got {len(self.scales)}')
        if any(b <= a for a, b in zip(self.scales, self.scales[1:])):
            self.fail('scales', 'expected strictly increasing values')
        if len(self.ratios_per_scale) != NUM_SCALES:
            self.fail('ratios_per_scale', f'expected {NUM_SCALES} values (one per scale), '
                      f'got {len(self.ratios_per_scale)}')
        if max(self.ratios_per_scale) > len(self.aspect_ratios):
            self.fail('ratios_per_scale', f'expected values <= {len(self.aspect_ratios)}, the '
                      'number of aspect_ratios')

    def ratios(self, scale: int) -> tuple[float, ...]:
        """Return the extra aspect ratios of scale ``scale``."""
        return self.aspect_ratios[:self.ratios_per_scale[scale]]

    def priors_per_cell(self) -> tuple[int, ...]:
        """Return A per scale: two squares plus two boxes per extra aspect ratio."""
        return tuple(2 + 2 * n for n in self.ratios_per_scale)


@dataclass(frozen=True)
class PostprocessConfig(ConfigBase):
    """Decoding of the head outputs into per-frame detections (SSD's Detect)."""

    score_threshold: float = param(
        0.01, 'Class scores at or below this are discarded before NMS.', ge=0.0, lt=1.0)
    nms_iou: float = param(0.45, 'IoU threshold of the per-class NMS.', gt=0.0, le=1.0)
    pre_nms_top_k: int = param(200, 'Highest-scoring candidates per class entering NMS.',
                               ge=1)
    top_k: int = param(20, 'Boxes kept per class after NMS.', ge=1)
    max_detections: int = param(100, 'Boxes kept per image, highest scores first.', ge=1)


@dataclass(frozen=True)
class DetectorConfig(ConfigBase):
    """The whole frame-level detector: flow subnet, backbone, fusion, head (paper §3)."""

    frames: FramesConfig = param(default_factory=FramesConfig)
    flow: FlowConfig = param(default_factory=FlowConfig)
    backbone: BackboneConfig = param(default_factory=BackboneConfig)
    fusion: FusionConfig = param(default_factory=FusionConfig)
    head: HeadConfig = param(default_factory=HeadConfig)
    postprocess: PostprocessConfig = param(default_factory=PostprocessConfig)
    input_size: int = param(
        300, 'Side S of the square network input; every camera image is resized to S x S '
        '(SSD300 / the paper: 300). Priors follow the actual feature-map sizes.', ge=32,
        read_only=True)
    class_names: tuple[str, ...] = param(
        UCF101_24_CLASSES, 'Foreground action classes (K - 1 of them; default UCF101-24).',
        read_only=True)
    rgb_mean: tuple[float, float, float] = param(
        (0.485, 0.456, 0.406), 'Mean subtracted from RGB frames in [0, 1].', ge=0.0, le=1.0,
        read_only=True)
    rgb_std: tuple[float, float, float] = param(
        (0.229, 0.224, 0.225), 'Standard deviation dividing RGB frames in [0, 1].', gt=0.0,
        read_only=True)
    device: str = param('auto', "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.",
                        read_only=True)
    precision: str = param(
        'fp32', "'fp32', 'fp16' (CUDA only) or 'bf16' autocast for inference.",
        choices=PRECISIONS, read_only=True)
    channels_last: bool = param(False, 'Use the channels_last memory format (faster convs on '
                                'recent GPUs).', read_only=True)

    def check(self) -> None:
        """Cross-field rules: input size per backbone, classes, device and precision."""
        minimum = MIN_INPUT_SIZE[self.backbone.kind]
        if self.input_size < minimum:
            self.fail('input_size', f'expected >= {minimum} for backbone '
                      f'{self.backbone.kind!r} (six feature maps of at least one cell)')
        if not self.class_names:
            self.fail('class_names', 'expected at least one class')
        if len(set(self.class_names)) != len(self.class_names):
            self.fail('class_names', 'expected unique names')
        if any(not name for name in self.class_names):
            self.fail('class_names', 'expected non-empty names')
        device = self.device
        if not (device in ('auto', 'cpu', 'cuda') or
                (device.startswith('cuda:') and device[5:].isdigit())):
            self.fail('device', "expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if self.precision == 'fp16' and device == 'cpu':
            self.fail('precision', "expected 'fp32' or 'bf16' on device 'cpu' (fp16 needs CUDA)")

    @property
    def num_classes(self) -> int:
        """Return K, the number of classes including background (index 0)."""
        return len(self.class_names) + 1


# --------------------------------------------------------------------------------------------
# Everything the node is configured with (ROS parameters, config/stal_ros.yaml).
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StalConfig(ConfigBase):
    """Top level: the detector and the online tubes."""

    detector: DetectorConfig = param(default_factory=DetectorConfig)
    tubes: TubeConfig = param(default_factory=TubeConfig)


# --------------------------------------------------------------------------------------------
# Training (paper §3.4, §4.2): optimiser, schedule, augmentation, the run itself.
# --------------------------------------------------------------------------------------------

OPTIMIZERS = ('sgd', 'adamw')
FLOW_REDUCTIONS = ('sum', 'mean')


@dataclass(frozen=True)
class OptimConfig(ConfigBase):
    """Optimiser and learning-rate schedule (paper §4.2: SGD, momentum 0.9, decay 5e-4)."""

    kind: str = param('sgd', "'sgd' (the paper: momentum, weight decay, step schedule) or "
                      "'adamw'.", choices=OPTIMIZERS)
    lr: float = param(1e-3, 'Base learning rate (after warm-up).', gt=0.0)
    momentum: float = param(0.9, 'SGD momentum (paper: 0.9).', ge=0.0, lt=1.0)
    weight_decay: float = param(5e-4, 'Weight decay (paper: 5e-4).', ge=0.0)
    milestones: tuple[float, ...] = param(
        (0.67, 0.89), 'Fractions of the iterations at which the learning rate is multiplied '
        'by gamma (step schedule).', gt=0.0, lt=1.0)
    gamma: float = param(0.1, 'Learning-rate factor at each milestone.', gt=0.0, le=1.0)
    warmup_iterations: int = param(
        200, 'Linear warm-up from lr / 10 over this many iterations.', ge=0)
    grad_clip: float = param(10.0, 'Clip the gradient norm to this (0: no clipping).', ge=0.0)

    def check(self) -> None:
        """Milestones increase."""
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            self.fail('milestones', 'expected strictly increasing fractions')


@dataclass(frozen=True)
class AugmentConfig(ConfigBase):
    """Training augmentation, applied identically to all K frames of a clip (and its flow)."""

    photometric: float = param(
        0.3, 'Strength of the random brightness, contrast and saturation change (0: off).',
        ge=0.0, le=1.0)
    crop_min_scale: float = param(
        0.7, 'Random crops keep at least this fraction of each side (1: no crop).', gt=0.0,
        le=1.0)
    mirror: bool = param(
        True, "Mirror left-right with the flow's x sign flipped; classes named *_left / "
        '*_right swap (a clip holding a directional class without its mirror is not mirrored).')
    channel_swap: bool = param(True, 'Randomly permute the RGB channels.')


@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """One training run (eq. 8: L = L_conf + L_reg + flow_weight * L_flow)."""

    iterations: int = param(6000, 'Optimiser steps (flow pre-training included).', ge=1)
    batch_size: int = param(16, 'Clips per step (over all processes with DDP).', ge=1)
    flow_pretrain_iterations: int = param(
        0, 'First, this many steps train only a learned flow subnet, on the exact flow with the '
        'multiscale flow loss (the data must carry flow).', ge=0)
    freeze_flow_iterations: int = param(
        1000, 'Then a learned flow subnet stays frozen for this many steps, until the detection '
        'loss is stable (paper §3.4), then trains end to end.', ge=0)
    flow_weight: float = param(1.0, 'w_flow of eq. 8 (used with ground-truth flow).', ge=0.0)
    flow_reduction: str = param(
        'mean', "Flow-loss reduction per level: 'sum' over pixels (eq. 1) or 'mean' (keeps the "
        'flow term on the scale of the detection terms).', choices=FLOW_REDUCTIONS)
    amp: bool = param(True, 'Mixed precision (bf16/fp16 autocast) on CUDA; ignored on CPU.')
    workers: int = param(1, 'Data-loader worker processes (0: load in the main process).',
                         ge=0)
    seed: int = param(0, 'Seed of the initialisation, the data order and the augmentation.',
                      ge=0)
    init_from: str = param(
        '', 'Start from the weights of this model checkpoint (a stal-train model.pt or a '
        'models/ file whose weights fit the detector: the same network; settings that own no '
        "weights, such as the flow's DIS options, may differ, a larger "
        'detector.frames.num_frames starts its new flow pairs at zero weight, and a larger '
        'detector.backbone.width (lite) starts computing what the narrower model did, '
        'stal_ros.net.widen); empty: from scratch.')
    log_every: int = param(50, 'Log the losses every this many steps.', ge=1)
    checkpoint_every: int = param(500, 'Write a resumable checkpoint every this many steps.',
                                  ge=1)
    swa_every: int = param(
        0, 'Stochastic weight averaging (Izmailov et al. 2018; stal_ros.net.averaging): from '
        'step swa_start * iterations on, add the weights to a running mean every this many '
        'steps; model.pt is then the mean, with its batch-norm statistics re-estimated on '
        'swa_bn_batches training batches, and model_last.pt the last weights (0: off).', ge=0)
    swa_start: float = param(
        0.5, 'Fraction of the iterations after which the weights are averaged (swa_every > 0).',
        ge=0.0, lt=1.0)
    swa_bn_batches: int = param(
        100, "Training batches that re-estimate the averaged model's batch-norm statistics.",
        ge=1)


# The node's own settings: ROS-free, so that the bag tools read the same defaults.
RELIABILITIES = ('auto', 'reliable', 'best_effort')


@dataclass(frozen=True)
class QosConfig(ConfigBase):
    """QoS of the image subscriptions (outputs are reliable)."""

    reliability: str = param(
        'auto', "'auto' matches the camera publisher's reliability (best effort while no "
        "publisher is known), or 'reliable' / 'best_effort'.", choices=RELIABILITIES,
        read_only=True)
    depth: int = param(
        5, 'Queue depth of each image subscription (KEEP_LAST). Every frame that arrives '
        'enters its clip (clips are K consecutive frames); only the model skips stale clips. '
        'A depth too small for bursts loses frames before they reach the node.', ge=1,
        le=1000, read_only=True)


@dataclass(frozen=True)
class OutputConfig(ConfigBase):
    """What the node publishes."""

    max_history: int = param(
        30, 'Per-tube history (frames) in each ActionTubeArray for active tubes; a finished '
        'tube is sent once with its whole history (up to tubes.max_history).', ge=1,
        read_only=True)
    trail: int = param(12, 'Box centres joined into a trail on image_annotated (0: none).',
                       ge=0, le=1000)
    diagnostics_period: float = param(1.0, 'Seconds between /diagnostics messages.',
                                      gt=0.0, le=60.0, read_only=True)


@dataclass(frozen=True)
class NodeConfig(ConfigBase):
    """The node's own settings (besides the detector's and the tubes')."""

    model: str = param(
        'lite_dis', 'Checkpoint: a path (absolute or relative to the working directory) or '
        "the name of a model in the package's models/ folder ('lite_dis' -> "
        'models/lite_dis.pt).', read_only=True)
    cameras: tuple[str, ...] = param(
        (), 'Camera names: [front, rear] subscribes front/image and publishes '
        'front/detections, front/tubes, ...; empty: one camera on image, detections, ....',
        read_only=True)
    autostart: bool = param(True, 'Configure (load the model) and activate at start-up; '
                            'false leaves the lifecycle node unconfigured.', read_only=True)
    compressed: bool = param(
        False, 'Subscribe sensor_msgs/CompressedImage on image/compressed (also chosen when '
        'the resolved image topic ends in /compressed).', read_only=True)
    processing_rate: float = param(
        0.0, 'Most frames per second processed per camera (0: every frame the model keeps '
        'up with; newer frames always replace waiting ones).', ge=0.0)
    cpu_threads: int = param(
        0, 'Threads torch may use on the CPU (0: its default, one per core). On a robot whose '
        'cores are busy, 1-2 avoids threads spinning against each other.', ge=0,
        read_only=True)
    qos: QosConfig = param(default_factory=QosConfig)
    output: OutputConfig = param(default_factory=OutputConfig)

    def check(self) -> None:
        """Camera names are unique, non-empty ROS names."""
        if len(set(self.cameras)) != len(self.cameras):
            self.fail('cameras', 'expected unique names')
        for name in self.cameras:
            if not name or not all(c.isalnum() or c in '_/' for c in name) or \
                    name[0].isdigit() or name.startswith('/') or name.endswith('/'):
                self.fail('cameras', f'expected relative ROS names (letters, digits, _ and /), '
                          f'got {name!r}')
