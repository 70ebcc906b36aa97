# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Synthetic motion benchmark: action classes defined ONLY by how an actor moves.

No action data set can be downloaded here, so the project makes its own.  Every video has one
to three actors whose appearance (shape, size, orientation, colours, texture) is drawn from a
random stream that never sees the class, over a textured background, under a panning and
jittering camera, sometimes partly hidden by occluders that are static in the world.  The class
of an actor is only in its motion, so a model has to use optical flow (paper §3.1-3.2) to tell
the classes apart; an RGB-only model cannot (the paper's "no fusion" ablation, Table 2).

Classes (``CLASS_NAMES``; speeds in pixels per frame at 128 x 128, scaled with min(H, W)):

- ``walk_right`` / ``walk_left``: translation at 1.5-2.5 px/frame; ``walk_left`` is
  ``walk_right`` played backwards (same positions, same speeds).
- ``run_right``: translation to the right at 3.5-5.5 px/frame.
- ``approach`` / ``retreat``: isotropic scaling about the actor's centre by 6-10 % per
  frame, over at most 0.67-1.5x the base size; ``retreat`` is ``approach`` played backwards.
- ``sit_down`` / ``stand_up``: the height (along the actor's own vertical axis) shrinks to
  45-60 % with the actor's own bottom edge fixed; ``stand_up`` is ``sit_down`` played backwards.
- ``jump``: one to three parabolic hops straight up in the image (10-18 px high).
- ``rotate``: spinning about the centre at 5-9 degrees per frame, either way.

The time-reversed pairs (``TIME_REVERSED``) are generated as ONE forward trajectory which the
second class plays backwards, with symmetric idle time before and after, so the distribution of
single frames is the same for both classes.  Orientation is uniform over the circle for every
actor, so a tilted shape says nothing about ``rotate``.

Every layer (background, actors, occluders) is a texture mapped into the image by an affine map
per frame (nothing else: the camera only translates), rendered by inverse mapping
(``cv2.warpAffine``).  The optical flow of a pixel p seen on layer L in frame t is therefore
exactly ``A_{t+1}(A_t^{-1}(p)) - p``; ``flow_valid`` marks the pixels where that holds
photometrically (not on a blended edge, not occluded or disoccluded in frame t + 1, landing
inside the image).

Conventions: image coordinates have pixel CENTRES at integers (OpenCV's sampling convention),
so ``frames[t][y, x]`` sits at (x, y); boxes are continuous pixel xyxy as everywhere in stal_ros
(pixel x covers [x, x + 1], so a box is the shape's extent + 0.5, clipped to [0, W] x [0, H]).
Flows are (T - 1, H, W, 2) float32, channel 0 = x (right), 1 = y (down), in pixels, from frame t
to t + 1: ``frames[t](p) ~ frames[t + 1](p + flows[t](p))``.  Frame indices are 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Sequence

import cv2
import numpy as np

from stal_ros.config_base import ConfigBase, param
from stal_ros.metrics.annotations import GroundTruth, GroundTruthTube, VideoAnnotations

__all__ = ['ActorTube', 'CLASS_NAMES', 'MotionConfig', 'MotionVideo', 'SPLITS', 'TIME_REVERSED',
           'ground_truth', 'make_split', 'make_video', 'split_seeds']

CLASS_NAMES: tuple[str, ...] = ('walk_right', 'walk_left', 'run_right', 'approach', 'retreat',
                                'sit_down', 'stand_up', 'jump', 'rotate')
TIME_REVERSED: tuple[tuple[str, str], ...] = (('walk_right', 'walk_left'),
                                              ('approach', 'retreat'),
                                              ('sit_down', 'stand_up'))

# class -> (motion kind, played backwards).  The kinds' parameters live in _plan_motion.
_MOTIONS: dict[str, tuple[str, bool]] = {
    'walk_right': ('walk', False), 'walk_left': ('walk', True), 'run_right': ('run', False),
    'approach': ('scale', False), 'retreat': ('scale', True),
    'sit_down': ('squash', False), 'stand_up': ('squash', True),
    'jump': ('jump', False), 'rotate': ('rotate', False)}

# Seeds of the splits are disjoint ranges: split_seeds(s, n)[i] = SPLITS[s] + i, n <= _SPAN.
SPLITS: dict[str, int] = {'train': 1_000_000_000, 'val': 2_000_000_000, 'test': 3_000_000_000}
_SPAN = 1_000_000_000

_REFERENCE = 128.0  # sizes and speeds are stated for a 128 x 128 video
_SHAPES = ('ellipse', 'rectangle', 'blob', 'polygon')
_PATTERNS = ('stripes', 'checks', 'blobs', 'noise', 'gradient')
_SUPERSAMPLE = 4  # masks are drawn 4x larger, then area-averaged (anti-aliased edges)
_OPAQUE = 0.999   # a pixel is photometrically one layer's when that layer covers >= this
_CLEAR = 0.001    # ... and every layer above it covers <= this


@dataclass(frozen=True)
class MotionConfig(ConfigBase):
    """How the synthetic motion videos are drawn (sizes and speeds for 128 x 128 videos)."""

    height: int = param(128, 'Frame height H in pixels.', ge=16)
    width: int = param(128, 'Frame width W in pixels.', ge=16)
    num_frames: int = param(40, 'Frames per video T.', ge=2)
    min_actors: int = param(1, 'Fewest actors per video.', ge=1)
    max_actors: int = param(3, 'Most actors per video.', ge=1)
    idle_actor_prob: float = param(
        0.25, 'Probability that an actor other than the first never acts (it is drawn, '
        'jitters, and is never labelled).', ge=0.0, le=1.0)
    classes: tuple[str, ...] = param(
        CLASS_NAMES, 'Classes acting actors draw from, uniformly (labels always index '
        'CLASS_NAMES).', choices=CLASS_NAMES)
    min_action_frames: int = param(
        8, 'Shortest action in frames (clipped to num_frames); actors are idle before and '
        'after their action.', ge=2)
    actor_size: tuple[float, float] = param(
        (16.0, 32.0), 'Range of the base size of an actor, sqrt(w * h), in pixels at 128 x 128, '
        'drawn log-uniformly.', gt=0.0)
    cross_prob: float = param(
        0.35, 'Probability that a walking or running actor enters or leaves the view during '
        'its action (its tube then covers only the frames where it is visible).', ge=0.0,
        le=1.0)
    occlusion_prob: float = param(
        0.3, 'Probability that a video has occluders (static in the world, drawn over the '
        'actors next to the path of an acting actor).', ge=0.0, le=1.0)
    max_occluders: int = param(2, 'Most occluders in a video that has some.', ge=1)
    pan_prob: float = param(0.6, 'Probability that the camera pans.', ge=0.0, le=1.0)
    pan_speed: float = param(
        1.0, 'Largest camera pan speed in pixels per frame at 128 x 128 (direction uniform).',
        ge=0.0)
    camera_jitter: float = param(
        0.3, 'Standard deviation of the per-frame camera shake in pixels at 128 x 128.',
        ge=0.0)
    actor_jitter: float = param(
        0.25, 'Standard deviation of the per-frame positional jitter of every actor in pixels at '
        '128 x 128 (the only motion of an idle actor).', ge=0.0)

    def check(self) -> None:
        """Cross-field rules: actor counts ordered, classes non-empty and unique."""
        if self.max_actors < self.min_actors:
            self.fail('max_actors', f'expected >= min_actors = {self.min_actors}')
        if not self.classes:
            self.fail('classes', 'expected at least one class')
        if len(set(self.classes)) != len(self.classes):
            self.fail('classes', 'expected unique class names')
        if self.actor_size[0] > self.actor_size[1]:
            self.fail('actor_size', 'expected (smallest, largest)')


@dataclass(frozen=True, eq=False)
class ActorTube:
    """The ground truth of one acting actor: its class and its box in every acting frame.

    Attributes:
        label: index into ``CLASS_NAMES``.
        frames: (n,) int64 consecutive 0-based frame indices where the actor acts and is at
            least partly inside the image.
        boxes: (n, 4) float32 continuous pixel xyxy of the actor's full extent (also where it
            is occluded), clipped to the image.
    """

    label: int
    frames: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        label = self.label
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or \
                not 0 <= label < len(CLASS_NAMES):
            raise ValueError(f'ActorTube.label: expected an int in [0, {len(CLASS_NAMES)}), '
                             f'got {label!r}')
        frames = np.asarray(self.frames)
        if frames.ndim != 1 or frames.size == 0 or not np.issubdtype(frames.dtype, np.integer):
            raise ValueError('ActorTube.frames: expected a non-empty 1-D integer array, got '
                             f'{frames.dtype} {frames.shape}')
        if frames[0] < 0 or np.any(np.diff(frames) != 1):
            raise ValueError('ActorTube.frames: expected consecutive indices >= 0, got '
                             f'{frames.tolist()}')
        boxes = np.asarray(self.boxes, np.float32)
        if boxes.shape != (frames.size, 4):
            raise ValueError(f'ActorTube.boxes: expected shape ({frames.size}, 4), got '
                             f'{boxes.shape}')
        if not np.all(np.isfinite(boxes)) or np.any(boxes[:, 2:] < boxes[:, :2]):
            raise ValueError('ActorTube.boxes: expected finite xyxy with x2 >= x1, y2 >= y1')
        object.__setattr__(self, 'label', int(label))
        object.__setattr__(self, 'frames', frames.astype(np.int64))
        object.__setattr__(self, 'boxes', boxes)

    @property
    def class_name(self) -> str:
        """Return the class name of the tube."""
        return CLASS_NAMES[self.label]


@dataclass(frozen=True, eq=False)
class MotionVideo:
    """One synthetic video with exact optical flow and its action tubes.

    Attributes:
        name: unique name, ``'<split>/<index:06d>'`` for the videos of ``make_split``.
        frames: (T, H, W, 3) uint8 RGB.
        flows: (T - 1, H, W, 2) float32 flow from frame t to t + 1 (x, y in pixels).
        flow_valid: (T - 1, H, W) bool, pixels whose flow is photometrically exact.
        tubes: one ``ActorTube`` per acting actor that is visible while it acts.
        idle_boxes: (I, T, 4) float32 continuous xyxy boxes of the I never-acting actors, NaN
            in the frames where one is fully outside the image (for visualisation).
        seed: the seed ``make_video`` was called with, or None.
    """

    name: str
    frames: np.ndarray
    flows: np.ndarray
    flow_valid: np.ndarray
    tubes: tuple[ActorTube, ...]
    idle_boxes: np.ndarray | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        where = f'MotionVideo({self.name!r})'
        frames = np.asarray(self.frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or \
                frames.shape[0] < 2:
            raise ValueError(f'{where}.frames: expected (T >= 2, H, W, 3) uint8, got '
                             f'{frames.dtype} {frames.shape}')
        t, h, w = frames.shape[:3]
        flows = np.asarray(self.flows, np.float32)
        if flows.shape != (t - 1, h, w, 2):
            raise ValueError(f'{where}.flows: expected shape {(t - 1, h, w, 2)}, got '
                             f'{flows.shape}')
        valid = np.asarray(self.flow_valid)
        if valid.dtype != bool or valid.shape != (t - 1, h, w):
            raise ValueError(f'{where}.flow_valid: expected {(t - 1, h, w)} bool, got '
                             f'{valid.dtype} {valid.shape}')
        tubes = tuple(self.tubes)
        for tube in tubes:
            if not isinstance(tube, ActorTube):
                raise TypeError(f'{where}.tubes: expected ActorTube, got {type(tube).__name__}')
            if tube.frames[-1] >= t:
                raise ValueError(f'{where}.tubes: frame {tube.frames[-1]} beyond T = {t}')
            if np.any(tube.boxes < 0) or np.any(tube.boxes[:, [0, 2]] > w) or \
                    np.any(tube.boxes[:, [1, 3]] > h):
                raise ValueError(f'{where}.tubes: boxes outside the {w} x {h} image')
        idle = np.zeros((0, t, 4), np.float32) if self.idle_boxes is None else \
            np.asarray(self.idle_boxes, np.float32)
        if idle.ndim != 3 or idle.shape[1:] != (t, 4):
            raise ValueError(f'{where}.idle_boxes: expected shape (I, {t}, 4), got {idle.shape}')
        object.__setattr__(self, 'frames', frames)
        object.__setattr__(self, 'flows', flows)
        object.__setattr__(self, 'flow_valid', valid)
        object.__setattr__(self, 'tubes', tubes)
        object.__setattr__(self, 'idle_boxes', idle)

    @property
    def num_frames(self) -> int:
        """Return T."""
        return int(self.frames.shape[0])


# --------------------------------------------------------------------------------------------
# Appearance: textures and shapes, drawn from a stream that never sees the class.
# --------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """(h, w) float32 band-limited noise with features of about ``cell`` pixels, unit std."""
    cell = max(float(cell), 1.0)
    gh, gw = int(math.ceil(h / cell)) + 3, int(math.ceil(w / cell)) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    up = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    oy, ox = (int(v) for v in rng.integers(0, max(int(cell), 1), 2))
    out = up[oy:oy + h, ox:ox + w]
    return (out - out.mean()) / (out.std() + 1e-6)


def _colour(rng: np.random.Generator, sat: tuple[float, float],
            val: tuple[float, float]) -> np.ndarray:
    """(3,) float32 RGB in 0..255 from a random hue, saturation and value."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]],
                   np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _pattern(rng: np.random.Generator, h: int, w: int, kind: str, s: float) -> np.ndarray:
    """(h, w) float32 pattern in [0, 1]; periods >= 7 texels so minified copies alias little."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    period = rng.uniform(7.0, 14.0) * max(s, 0.5)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 'stripes':
        m = np.tanh(2.0 * np.sin(2 * np.pi * u / period + phase))
    elif kind == 'checks':
        period *= 1.4  # the product of two sines has sqrt(2) x their frequency
        m = np.tanh(3.0 * np.sin(2 * np.pi * u / period + phase) *
                    np.sin(2 * np.pi * v / period))
    elif kind == 'blobs':
        m = np.tanh(2.0 * _smooth_noise(rng, h, w, period * 0.7))
    elif kind == 'noise':
        m = 0.6 * _smooth_noise(rng, h, w, period * 0.5) + 0.4 * _smooth_noise(rng, h, w, 3.0)
        m = np.tanh(m)
    else:  # gradient
        m = np.tanh(1.5 * (u - u.mean()) / (u.std() + 1e-6)) + \
            0.3 * _smooth_noise(rng, h, w, 4.0)
        m = np.clip(m, -1.0, 1.0)
    return (0.5 + 0.5 * m).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int, s: float) -> np.ndarray:
    """(h, w, 3) float32 RGB texture: two random colours mixed by a random pattern."""
    kind = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
    c1 = _colour(rng, (0.25, 1.0), (0.2, 1.0))
    c2 = _colour(rng, (0.25, 1.0), (0.2, 1.0))
    if np.abs(c1 - c2).sum() < 120:  # keep the pattern visible
        c2 = 255.0 - c1
    m = _pattern(rng, h, w, kind, s)[..., None]
    rgb = c1 * (1 - m) + c2 * m + 6.0 * _smooth_noise(rng, h, w, 2.0)[..., None]
    return cv2.GaussianBlur(np.clip(rgb, 0, 255), (0, 0), 0.6)


def _background(rng: np.random.Generator, h: int, w: int, s: float) -> np.ndarray:
    """(h, w, 3) float32 multi-scale noise background with a faint pattern now and then."""
    cells = [c * s for c in (48.0, 24.0, 12.0, 6.0)]
    weights = rng.uniform(0.3, 1.0, len(cells)) * np.array([1.0, 0.7, 0.45, 0.3])
    n = sum(wt * _smooth_noise(rng, h, w, c) for wt, c in zip(weights, cells))
    n = 0.5 + 0.5 * np.tanh(n / (np.std(n) + 1e-6))
    palette = np.stack([_colour(rng, (0.05, 0.7), (0.2, 0.95)) for _ in range(3)])
    # Piecewise-linear map through three colours.
    lo = np.clip(2 * n, 0, 1)[..., None]
    hi = np.clip(2 * n - 1, 0, 1)[..., None]
    rgb = palette[0] * (1 - lo) + palette[1] * (lo - hi) + palette[2] * hi
    if rng.random() < 0.4:
        kind = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
        rgb = rgb + rng.uniform(15, 45) * (_pattern(rng, h, w, kind, s)[..., None] - 0.5)
    return cv2.GaussianBlur(np.clip(rgb, 0, 255).astype(np.float32), (0, 0), 0.6)


def _outline(rng: np.random.Generator, shape: str, w: float, h: float) -> np.ndarray:
    """(n, 2) float64 closed outline of a shape of about w x h, centred on (0, 0)."""
    if shape == 'ellipse':
        phi = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        return np.stack([w / 2 * np.cos(phi), h / 2 * np.sin(phi)], 1)
    if shape == 'rectangle':  # rounded corners of random radius
        r = rng.uniform(0.0, 0.35) * min(w, h)
        pts = []
        for cx, cy, a0 in ((w / 2 - r, h / 2 - r, 0.0), (-w / 2 + r, h / 2 - r, 0.5),
                           (-w / 2 + r, -h / 2 + r, 1.0), (w / 2 - r, -h / 2 + r, 1.5)):
            phi = np.pi * (a0 + np.linspace(0, 0.5, 6))
            pts.append(np.stack([cx + r * np.cos(phi), cy + r * np.sin(phi)], 1))
        return np.concatenate(pts)
    if shape == 'blob':  # star-convex with a few smooth harmonics
        phi = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        rad = np.ones_like(phi)
        for k in (2, 3, 4):
            rad += rng.uniform(-0.12, 0.12) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        pts = np.stack([rad * np.cos(phi), rad * np.sin(phi)], 1)
    else:  # polygon: 5-8 vertices on a jittered circle
        k = int(rng.integers(5, 9))
        phi = 2 * np.pi * np.arange(k) / k + rng.uniform(-0.25, 0.25, k) * 2 * np.pi / k
        rad = rng.uniform(0.8, 1.0, k)
        pts = np.stack([rad * np.cos(phi), rad * np.sin(phi)], 1)
    extent = pts.max(0) - pts.min(0)
    pts = (pts - (pts.max(0) + pts.min(0)) / 2) / extent * (w, h)
    return pts


@dataclass
class _Sprite:
    """A textured layer: premultiplied RGBA texture and its outline in texel coordinates."""

    rgba: np.ndarray        # (h, w, 4) float32, RGB premultiplied by alpha, alpha in [0, 1]
    outline: np.ndarray     # (n, 2) texel coordinates (centres at integers)
    centre: np.ndarray      # (2,) texel coordinates of the local origin
    bottom: float           # largest local y of the outline (the actor's own bottom edge)


def _sprite(rng: np.random.Generator, size: float, s: float) -> _Sprite:
    """Draw a random textured shape of base size ``size`` pixels (sqrt of w * h)."""
    aspect = math.exp(rng.uniform(math.log(0.6), math.log(1.8)))  # h / w
    w, h = size / math.sqrt(aspect), size * math.sqrt(aspect)
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    local = _outline(rng, shape, w, h)
    pad = 3
    tw, th = int(math.ceil(w)) + 2 * pad, int(math.ceil(h)) + 2 * pad
    centre = np.array([(tw - 1) / 2, (th - 1) / 2])
    outline = local + centre
    # Texel u covers supersampled pixels [k u, k u + k); its centre is at k u + (k - 1) / 2.
    k = _SUPERSAMPLE
    canvas = np.zeros((th * k, tw * k), np.uint8)
    pts = np.round((outline * k + (k - 1) / 2) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_8, shift=4)
    alpha = cv2.resize(canvas.astype(np.float32) / 255.0, (tw, th),
                       interpolation=cv2.INTER_AREA)
    rgb = _texture(rng, th, tw, s)
    rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], 2).astype(np.float32)
    return _Sprite(rgba, outline, centre, float(local[:, 1].max()))


# --------------------------------------------------------------------------------------------
# Motion: per-frame affine maps from texel coordinates to the world; the class is only here.
# --------------------------------------------------------------------------------------------


@dataclass
class _Actor:
    sprite: _Sprite
    label: int | None            # None: never acts
    start: int                   # first acting frame
    end: int                     # last acting frame (inclusive)
    world: np.ndarray            # (T, 2, 3) texel -> world affine maps


def _duration(rng: np.random.Generator, lo: int, hi: int, cfg: MotionConfig) -> int:
    length = int(rng.integers(lo, hi + 1))
    return int(np.clip(length, min(cfg.min_action_frames, cfg.num_frames), cfg.num_frames))


def _plan_motion(kind: str, rng: np.random.Generator, cfg: MotionConfig, s: float
                 ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw one forward action trajectory of ``kind``.

    Returns:
        L (frames), offsets (L, 2) world displacement of the centre from its mid-action
        position, angles (L,) rotation added to the base orientation, scales (L, 2) (sx, sy)
        along the actor's own axes, anchored (L,) bool-like: 1 when sy keeps the bottom fixed.
    """
    t_max = cfg.num_frames
    if kind in ('walk', 'run'):
        lo, hi, (v0, v1) = (12, 30, (1.5, 2.5)) if kind == 'walk' else (8, 18, (3.5, 5.5))
        length = _duration(rng, lo, hi, cfg)
        speed = rng.uniform(v0, v1) * s
        tau = np.arange(length) - (length - 1) / 2
        off = np.stack([speed * tau, np.zeros(length)], 1)
        return length, off, np.zeros(length), np.ones((length, 2)), np.zeros(length)
    if kind == 'scale':
        rate = rng.uniform(0.06, 0.10)
        length = _duration(rng, 8, 16, cfg)
        # At most e^0.8 = 2.2x from start to end (0.67x to 1.5x the base size).
        length = min(length, max(int(0.8 / rate) + 1, min(cfg.min_action_frames, t_max)))
        k = np.exp(rate * (np.arange(length) - (length - 1) / 2))
        return length, np.zeros((length, 2)), np.zeros(length), np.stack([k, k], 1), \
            np.zeros(length)
    if kind == 'squash':
        low = rng.uniform(0.45, 0.6)
        length = _duration(rng, 8, 14, cfg)
        sy = np.linspace(1.0, low, length)
        return length, np.zeros((length, 2)), np.zeros(length), \
            np.stack([np.ones(length), sy], 1), np.ones(length)
    if kind == 'jump':
        period = int(rng.integers(8, 13))
        height = rng.uniform(10.0, 18.0) * s
        period = max(1, min(period, t_max - 1))
        hops = int(rng.integers(1, 4))
        hops = max(1, min(hops, (t_max - 1) // period))
        length = hops * period + 1
        phase = (np.arange(length) / period) % 1.0
        off = np.stack([np.zeros(length), -4.0 * height * phase * (1 - phase)], 1)
        return length, off, np.zeros(length), np.ones((length, 2)), np.zeros(length)
    if kind == 'rotate':
        omega = math.radians(rng.uniform(5.0, 9.0)) * (1 if rng.random() < 0.5 else -1)
        length = _duration(rng, 10, 24, cfg)
        ang = omega * (np.arange(length) - (length - 1) / 2)
        return length, np.zeros((length, 2)), ang, np.ones((length, 2)), np.zeros(length)
    raise ValueError(f'unknown motion kind {kind!r}')


def _affine(sprite: _Sprite, pos: np.ndarray, angle: np.ndarray, scale: np.ndarray,
            anchored: np.ndarray) -> np.ndarray:
    """(T, 2, 3) texel -> world maps: world = pos + R(angle) (diag(scale) (u - c) + shift).

    ``shift`` = (0, bottom (1 - sy)) where anchored, so the actor's own bottom edge stays put.
    """
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (T, 2, 2)
    lin = rot * scale[:, None, :]                                              # R diag(s)
    shift = np.stack([np.zeros_like(anchored), anchored * sprite.bottom * (1 - scale[:, 1])], 1)
    trans = pos + np.einsum('tij,tj->ti', rot, shift) - lin @ sprite.centre
    return np.concatenate([lin, trans[..., None]], 2)


def _plan_actor(seed: int, index: int, acting: bool, cfg: MotionConfig, s: float,
                cam: np.ndarray) -> _Actor:
    """Draw actor ``index``: appearance, class and trajectory from three separate streams."""
    t_max, h, w = cfg.num_frames, cfg.height, cfg.width
    look = np.random.default_rng([seed, 2, index])
    lo, hi = cfg.actor_size
    size = math.exp(look.uniform(math.log(lo), math.log(hi))) * s
    sprite = _sprite(look, size, s)
    base_angle = look.uniform(-np.pi, np.pi)

    move = np.random.default_rng([seed, 3, index])
    label, kind, backwards = None, None, False
    if acting:
        pick = np.random.default_rng([seed, 1, index])
        name = cfg.classes[int(pick.integers(len(cfg.classes)))]
        label = CLASS_NAMES.index(name)
        kind, backwards = _MOTIONS[name]
        length, off, ang, scale, anchored = _plan_motion(kind, move, cfg, s)
        if backwards:
            off, ang, scale = off[::-1], ang[::-1], scale[::-1]
        start = int(move.integers(0, t_max - length + 1))
        end = start + length - 1
        # Idle before and after: the first / last state of the action, held.
        idx = np.clip(np.arange(t_max) - start, 0, length - 1)
        off, ang, scale, anchored = off[idx], ang[idx], scale[idx], anchored[idx]
        mid = (start + end) // 2
    else:
        start, end, mid = -1, -2, t_max // 2
        off, ang = np.zeros((t_max, 2)), np.zeros(t_max)
        scale, anchored = np.ones((t_max, 2)), np.zeros(t_max)
    # Mid-action position: inside the camera's view at that frame (world coordinates).
    centre = cam[mid] + move.uniform((0.15 * w, 0.25 * h), (0.85 * w, 0.8 * h))
    jitter = move.normal(0.0, cfg.actor_jitter * s, (t_max, 2))
    if acting and kind in ('walk', 'run') and move.random() < cfg.cross_prob:
        # Enter or leave the view: just fully outside at the first or the last state of the
        # forward (rightward) trajectory, left or right of the view.  Chosen on the forward
        # trajectory, so walk_left plays the same positions backwards: it leaves where
        # walk_right enters, and the other way round.
        first = move.random() < 0.5
        f = start if first != backwards else end
        radius = float(np.linalg.norm(sprite.outline - sprite.centre, axis=1).max()) + 1.5
        centre[0] = cam[f, 0] + (-radius if first else w - 1 + radius) - off[f, 0]
    pos = centre + off + jitter
    world = _affine(sprite, pos, base_angle + ang, scale, anchored)
    return _Actor(sprite, label, start, end, world)


def _camera(rng: np.random.Generator, cfg: MotionConfig, s: float) -> np.ndarray:
    """(T, 2) world position of the image origin per frame: pan through the middle + shake."""
    t_max = cfg.num_frames
    vel = np.zeros(2)
    if rng.random() < cfg.pan_prob:
        direction = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.0, cfg.pan_speed * s)
        vel = speed * np.array([math.cos(direction), math.sin(direction)])
    tau = np.arange(t_max) - (t_max - 1) / 2
    return tau[:, None] * vel + rng.normal(0.0, cfg.camera_jitter * s, (t_max, 2))


def _occluders(rng: np.random.Generator, actors: list[_Actor], cfg: MotionConfig,
               s: float) -> list[tuple[_Sprite, np.ndarray]]:
    """Static-in-world textured patches next to acting actors' paths: (sprite, texel->world)."""
    acting = [a for a in actors if a.label is not None]
    if not acting or rng.random() >= cfg.occlusion_prob:
        return []
    out = []
    for _ in range(int(rng.integers(1, cfg.max_occluders + 1))):
        actor = acting[int(rng.integers(len(acting)))]
        mid = (actor.start + actor.end) // 2
        at = actor.world[mid] @ np.append(actor.sprite.centre, 1.0)
        size = rng.uniform(0.12, 0.28) * min(cfg.height, cfg.width)
        sprite = _sprite(rng, size, s)
        centre = at + rng.uniform(-0.6, 0.6, 2) * size
        ang = rng.uniform(-np.pi, np.pi)
        world = _affine(sprite, centre[None], np.array([ang]), np.ones((1, 2)), np.zeros(1))
        out.append((sprite, world[0]))
    return out


# --------------------------------------------------------------------------------------------
# Rendering and exact flow.
# --------------------------------------------------------------------------------------------


def _compose(world: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """(..., 2, 3) texel -> image maps: image = world - camera origin."""
    out = np.array(world, np.float64, copy=True)
    out[..., :, 2] -= cam
    return out


def _homogeneous(m: np.ndarray) -> np.ndarray:
    out = np.zeros(m.shape[:-2] + (3, 3))
    out[..., :2, :] = m
    out[..., 2, 2] = 1.0
    return out


def _boxes(outline: np.ndarray, maps: np.ndarray, h: int, w: int) -> np.ndarray:
    """(T, 4) float32 continuous xyxy of the outline under ``maps``, clipped to the image."""
    pts = np.einsum('tij,nj->tni', maps[..., :2], outline) + maps[:, None, :, 2]
    lo, hi = pts.min(1) + 0.5, pts.max(1) + 0.5   # centre convention -> continuous
    box = np.concatenate([lo, hi], 1)
    return np.clip(box, 0.0, [w, h, w, h]).astype(np.float32)


def _longest_run(mask: np.ndarray) -> tuple[int, int] | None:
    """Return (first, last) of the longest run of True in a 1-D mask, or None."""
    best, start, out = 0, None, None
    for i, v in enumerate(np.append(mask, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start > best:
                best, out = i - start, (start, i - 1)
            start = None
    return out


def make_video(seed: int, config: MotionConfig | None = None,
               name: str | None = None) -> MotionVideo:
    """Generate one video, deterministically from ``seed``.

    Args:
        seed: an int >= 0; the same seed and config give identical arrays.
        config: the generator settings (default ``MotionConfig()``).
        name: the video name (default ``'seed/<seed>'``).

    Returns:
        the video: (T, H, W, 3) frames, (T - 1, H, W, 2) exact flows and (T - 1, H, W) their
        validity, the tubes of the acting actors and the (I, T, 4) boxes of the idle ones.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'make_video: expected a seed int >= 0, got {seed!r}')
    cfg = MotionConfig() if config is None else config
    if not isinstance(cfg, MotionConfig):
        raise TypeError(f'make_video: expected a MotionConfig, got {type(cfg).__name__}')
    seed = int(seed)
    t_max, h, w = cfg.num_frames, cfg.height, cfg.width
    s = min(h, w) / _REFERENCE
    scene = np.random.default_rng([seed, 0])
    cam = _camera(scene, cfg, s)
    count = int(scene.integers(cfg.min_actors, cfg.max_actors + 1))
    acting = [i == 0 or scene.random() >= cfg.idle_actor_prob for i in range(count)]
    actors = [_plan_actor(seed, i, acting[i], cfg, s, cam) for i in range(count)]
    order = scene.permutation(count)  # depth order, back to front
    occluders = _occluders(scene, actors, cfg, s)

    # Background: one world texture covering the camera's whole sweep.
    margin = 4
    lo = np.floor(cam.min(0)) - margin
    span = np.ceil(cam.max(0) - cam.min(0)).astype(int) + 2 * margin + 1
    bg = _background(scene, h + int(span[1]), w + int(span[0]), s)
    bg_world = np.array([[1.0, 0.0, lo[0]], [0.0, 1.0, lo[1]]])

    # Layers back to front: (sprite or None for the background, (T, 2, 3) texel->image).
    layers: list[tuple[_Sprite | None, np.ndarray]] = [(None, _compose(
        np.broadcast_to(bg_world, (t_max, 2, 3)), cam))]
    layers += [(actors[i].sprite, _compose(actors[i].world, cam)) for i in order]
    layers += [(sp, _compose(np.broadcast_to(m, (t_max, 2, 3)), cam))
               for sp, m in occluders]

    frames = np.empty((t_max, h, w, 3), np.uint8)
    alphas = np.zeros((len(layers), h, w), np.float32)
    coverage = np.zeros((len(layers), t_max), np.int64)  # pixels a layer covers (> 1/2)
    flows = np.empty((t_max - 1, h, w, 2), np.float32)
    valid = np.empty((t_max - 1, h, w), bool)
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32),
                                np.arange(h, dtype=np.float32)), -1)  # (H, W, 2) x, y
    prev_id = prev_pure = None
    flags = cv2.INTER_LINEAR
    for t in range(t_max):
        img = cv2.warpAffine(bg, layers[0][1][t], (w, h), flags=flags,
                             borderMode=cv2.BORDER_REFLECT_101)
        for j, (sprite, maps) in enumerate(layers[1:], 1):
            rgba = cv2.warpAffine(sprite.rgba, maps[t], (w, h), flags=flags,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            alphas[j] = rgba[..., 3]
            img = img * (1.0 - rgba[..., 3:]) + rgba[..., :3]
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        # Top layer per pixel (coverage > 1/2), and whether the pixel is that layer's alone.
        alphas[0] = 1.0
        cover = alphas > 0.5
        coverage[:, t] = cover.reshape(len(layers), -1).sum(1)
        top = (len(layers) - 1 - np.argmax(cover[::-1], axis=0)).astype(np.int16)
        top_alpha = np.take_along_axis(alphas, top[None].astype(np.int64), 0)[0]
        above_top = np.zeros((h, w), np.float32)  # coverage of the layers above the top
        for j in range(2, len(layers)):
            above_top += np.where(top < j, alphas[j], 0.0)
        pure = (top_alpha >= _OPAQUE) & (above_top <= _CLEAR)
        if t > 0:
            flows[t - 1], valid[t - 1] = _flow(layers, t - 1, prev_id, prev_pure, top, pure,
                                               grid)
        prev_id, prev_pure = top, pure

    tubes, idle = [], []
    for layer, i in enumerate(order, 1):
        actor = actors[i]
        boxes = _boxes(actor.sprite.outline, _compose(actor.world, cam), h, w)
        visible = coverage[layer] > 0  # covers a pixel of the image, occluded or not
        if actor.label is None:
            idle.append(np.where(visible[:, None], boxes, np.nan))
            continue
        run = _longest_run(visible[actor.start:actor.end + 1])
        if run is None:
            continue
        first, last = actor.start + run[0], actor.start + run[1]
        tubes.append(ActorTube(actor.label, np.arange(first, last + 1),
                               boxes[first:last + 1]))
    idle_boxes = np.stack(idle).astype(np.float32) if idle else np.zeros((0, t_max, 4),
                                                                         np.float32)
    return MotionVideo(name if name is not None else f'seed/{seed}', frames, flows, valid,
                       tuple(tubes), idle_boxes, seed)


def _flow(layers: list[tuple[_Sprite | None, np.ndarray]], t: int, top_t: np.ndarray,
          pure_t: np.ndarray, top_n: np.ndarray, pure_n: np.ndarray,
          grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow t -> t + 1 of the top layer of every pixel, and where it is photometric.

    Args:
        layers: (sprite, (T, 2, 3) texel -> image maps), back to front.
        top_t, top_n: (H, W) top-layer index in frames t and t + 1.
        pure_t, pure_n: (H, W) bool, the pixel shows its top layer alone.
        grid: (H, W, 2) pixel centre coordinates x, y.

    Returns:
        (H, W, 2) float32 flow and (H, W) bool validity.
    """
    h, w = top_t.shape
    flow = np.empty((h, w, 2), np.float32)
    for j, (_, maps) in enumerate(layers):
        here = top_t == j
        if not here.any():
            continue
        # B = A_{t+1} A_t^{-1}; flow(p) = B p - p, affine in p (computed in float64).
        b = _homogeneous(maps[t + 1]) @ np.linalg.inv(_homogeneous(maps[t]))
        lin = b[:2, :2] - np.eye(2)
        if j == 0 or not np.any(lin):  # a translation: the same flow everywhere
            np.copyto(flow, b[:2, 2].astype(np.float32), where=here[..., None])
        else:
            np.copyto(flow, grid @ lin.T.astype(np.float32) + b[:2, 2].astype(np.float32),
                      where=here[..., None])
    tx, ty = grid[..., 0] + flow[..., 0], grid[..., 1] + flow[..., 1]
    ok = pure_t & (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    # Bilinear sampling at p + flow reads 4 pixels of frame t + 1: all must show this layer.
    pid_n = np.where(pure_n, top_n, -1).ravel()
    x0 = np.clip(tx, 0, w - 1).astype(np.int32)  # floor, as tx >= 0 after clipping
    y0 = np.clip(ty, 0, h - 1).astype(np.int32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1) * w
    y0 *= w
    for idx in (y0 + x0, y0 + x1, y1 + x0, y1 + x1):
        ok &= pid_n.take(idx) == top_t
    return flow, ok


def split_seeds(split: str, count: int) -> list[int]:
    """Return the seeds of the first ``count`` videos of ``split`` ('train', 'val', 'test').

    The splits use disjoint seed ranges (``SPLITS[split] + index``), so no video is shared.
    """
    if split not in SPLITS:
        raise ValueError(f'split_seeds: expected a split in {sorted(SPLITS)}, got {split!r}')
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or \
            not 0 <= count <= _SPAN:
        raise ValueError(f'split_seeds: expected 0 <= count <= {_SPAN}, got {count!r}')
    return [SPLITS[split] + i for i in range(int(count))]


def make_split(split: str, count: int, config: MotionConfig | None = None
               ) -> list[MotionVideo]:
    """Generate the first ``count`` videos of ``split``, named ``'<split>/<index:06d>'``.

    Every video stays in memory (about 7 MB at 128 x 128 x 40): write large splits with
    ``stal-make-benchmark``, which streams them to disk.
    """
    seeds = split_seeds(split, count)
    return [make_video(seed, config, f'{split}/{i:06d}') for i, seed in enumerate(seeds)]


def ground_truth(videos: Sequence[MotionVideo]) -> GroundTruth:
    """Return the evaluation ground truth of ``videos`` (0-based frame numbers)."""
    out = []
    for video in videos:
        if not isinstance(video, MotionVideo):
            raise TypeError(f'ground_truth: expected MotionVideo, got {type(video).__name__}')
        tubes = tuple(GroundTruthTube(video.name, t.label, t.frames, t.boxes)
                      for t in video.tubes)
        out.append(VideoAnnotations(video.name, video.num_frames, tubes))
    return GroundTruth(out, len(CLASS_NAMES), CLASS_NAMES)
