# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The composed detector: every flow x fusion x backbone, paper configuration, input checks."""

import numpy as np
import pytest
import torch

from stal_ros.config import ConfigError, DetectorConfig, FLOW_KINDS, FUSION_KINDS
from stal_ros.frames import FrameBuffer
from stal_ros.net.backbone import LiteBackbone, VGG16RFB
from stal_ros.net.detector import (build_detector, build_model, Detector, DetectorOutput,
                                   resolve_device, STALDetector)
from stal_ros.structures import Detections

BACKBONES = {'lite': ({'kind': 'lite', 'width': 0.25}, 32),
             'vgg16_rfb': ({'kind': 'vgg16_rfb', 'width': 0.0625}, 268)}
TINY_FLOW = {'input_size': [64, 64], 'pyramid_channels': [4, 6, 8], 'search_range': 2}


def tiny_config(backbone='lite', flow='dis', fusion='concat', **extra):
    spec, size = BACKBONES[backbone]
    data = {'input_size': size, 'backbone': spec, 'flow': dict(TINY_FLOW, kind=flow),
            'fusion': {'kind': fusion}, 'class_names': ['wave', 'walk', 'run'],
            'device': 'cpu'}
    data.update(extra)
    return DetectorConfig.from_dict(data)


def random_clip(h, w, t=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('backbone', sorted(BACKBONES))
@pytest.mark.parametrize('flow', FLOW_KINDS)
@pytest.mark.parametrize('fusion', FUSION_KINDS)
def test_output_shapes_for_every_combination(backbone, flow, fusion):
    torch.manual_seed(0)
    config = tiny_config(backbone, flow, fusion)
    detector = build_detector(config)
    model = detector.model
    assert isinstance(detector, Detector) and isinstance(model, STALDetector)
    s = config.input_size
    with torch.no_grad():
        out = model(torch.rand(2, 3, 3, s, s))
    p = out.priors.shape[0]
    assert isinstance(out, DetectorOutput)
    assert out.loc.shape == (2, p, 4) and out.conf.shape == (2, p, 4)
    sides = _map_sides(backbone, s)
    assert p == sum(m * m * a for m, a in zip(sides, config.head.priors_per_cell()))
    if fusion == 'none':
        assert out.motion is None and model.motion is None
    else:
        assert out.motion.image.shape == (2, 3, s, s)
        assert len(out.motion.flows) == 2 and out.motion.flows[0].shape == (2, 2, s, s)
        assert (len(out.motion.pyramids[0]) > 0) == (flow == 'pwc')
    dets = detector.detect([random_clip(24, 40, seed=1), random_clip(50, 30, seed=2)])
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    assert dets[0].boxes[:, [0, 2]].max(initial=0) <= 40
    assert dets[1].boxes[:, [1, 3]].max(initial=0) <= 50
    assert all(d.class_scores.shape == (len(d), 3) for d in dets)


def _map_sides(backbone, s):
    if backbone == 'lite':
        return [-(-s // 2 ** k) for k in range(3, 9)]
    return {268: [34, 17, 9, 5, 3, 1]}[s]


@pytest.mark.slow
def test_paper_configuration_forward_at_320_on_cpu():
    torch.manual_seed(0)
    config = DetectorConfig(input_size=320, device='cpu')
    model = build_model(config).eval()
    assert isinstance(model.backbone, VGG16RFB)
    assert model.backbone.out_channels == (512, 1024, 512, 256, 256, 256)
    assert config.flow.kind == 'pwc' and config.fusion.kind == 'concat'
    with torch.no_grad():
        out = model(torch.rand(1, 3, 3, 320, 320))
    # 40^2*6 + 20^2*6 + 10^2*6 + 5^2*6 + 3^2*4 + 1*4 priors at 320x320.
    assert out.loc.shape == (1, 12790, 4) and out.conf.shape == (1, 12790, 25)
    assert torch.isfinite(out.loc).all() and torch.isfinite(out.conf).all()
    assert out.motion.image.shape == (1, 3, 320, 320)


def test_backbone_weights_are_shared_between_rgb_and_flow():
    torch.manual_seed(0)
    model = build_model(tiny_config('lite', 'dis', 'concat')).eval()
    assert len([m for m in model.modules() if isinstance(m, LiteBackbone)]) == 1
    clip = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        out = model(clip)
        # The same backbone module on the normalised RGB target frame and the flow image.
        rgb = (clip[:, 2] - model.rgb_mean) / model.rgb_std
        both = model.backbone(torch.cat([rgb, out.motion.image]))   # streams stacked
        fused = model.fusion([m[:2] for m in both], [m[2:] for m in both])
        loc, conf = model.head(fused)
    assert torch.allclose(conf, out.conf, atol=1e-5) and torch.allclose(loc, out.loc, atol=1e-5)
    batches = []
    model.backbone.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    with torch.no_grad():
        model(clip)
        model.train()
        model(clip)
    assert batches == [4, 4]             # one pass over 2N images, in eval and in training


def test_detect_batches_cameras_like_single_calls():
    torch.manual_seed(0)
    model = build_detector(tiny_config('lite', 'farneback', 'stfp',
                                       postprocess={'score_threshold': 0.2}))
    a, b = random_clip(48, 64, seed=3), random_clip(90, 40, seed=4)
    both = model.detect([a, b])
    single = model.detect([a])[0], model.detect([b])[0]
    for got, want in zip(both, single):
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
    assert len(both[0]) > 0


def test_detect_boxes_follow_each_camera_resolution():
    torch.manual_seed(0)
    model = build_detector(tiny_config('lite', 'dis', 'concat',
                                       postprocess={'score_threshold': 0.2}))
    # Uniform frames resize to exactly the same network input at any resolution, so the
    # detections must be the same boxes scaled by each camera's (W, H).
    small = np.full((3, 32, 32, 3), 120, np.uint8)
    wide = np.full((3, 48, 160, 3), 120, np.uint8)
    d_small, d_wide = model.detect([small, wide])
    assert len(d_small) > 0
    np.testing.assert_allclose(d_wide.boxes, d_small.boxes * [5, 1.5, 5, 1.5], rtol=1e-5,
                               atol=1e-3)
    np.testing.assert_array_equal(d_wide.labels, d_small.labels)


def test_detect_accepts_frame_buffer_clips_and_frame_lists():
    model = build_detector(tiny_config('lite', 'dis', 'sum'))
    buffer = FrameBuffer(model_config := tiny_config().frames)
    clip = None
    for i, frame in enumerate(random_clip(20, 30, t=3, seed=6)):
        clip = buffer.push(frame, i + 1)
    assert model_config.num_frames == 3
    from_clip = model.detect([clip])[0]
    from_list = model.detect([list(clip.frames)])[0]
    np.testing.assert_array_equal(from_clip.boxes, from_list.boxes)


@pytest.mark.parametrize('clips, error, message', [
    (random_clip(20, 20), TypeError, 'expected a sequence of clips'),
    ([], ValueError, 'expected at least one clip, got 0'),
    ([random_clip(20, 20).astype(np.float32)], TypeError, 'expected dtype uint8, got float32'),
    ([random_clip(20, 20, t=2)], ValueError, r'clips\[0\]: expected 3 frames, got 2'),
    ([random_clip(20, 20)[..., :1]], ValueError, r'expected shape \(T, H, W, 3\)'),
    ([random_clip(20, 20)[0]], ValueError, r'expected shape \(T, H, W, 3\) = \(3, H, W, 3\)'),
    ([np.zeros((3, 0, 20, 3), np.uint8)], ValueError, 'expected a non-empty image'),
    ([random_clip(8, 8), [random_clip(20, 20)[0], random_clip(20, 21)[0],
                          random_clip(20, 20)[0]]],
     ValueError, r'clips\[1\]: expected frames of one size, got shapes'),
    ([[random_clip(20, 20)[0], 'x', random_clip(20, 20)[0]]], TypeError,
     r'clips\[0\]\[1\]: expected a numpy.ndarray'),
    (['frames'], TypeError, r'clips\[0\]: expected a numpy.ndarray \(T, H, W, 3\) uint8, got str'),
])
def test_bad_detect_input_names_expected_and_actual(clips, error, message):
    model = build_detector(tiny_config('lite', 'dis', 'average'))
    with pytest.raises(error, match=message):
        model.detect(clips)


def test_bad_forward_input_and_centred_clip_mismatch():
    detector = build_detector(tiny_config('lite', 'dis', 'concat'))
    model = detector.model
    with pytest.raises(ValueError, match=r'expected clip shape \(N, 3, 3, 32, 32\).*got '
                                         r'\(1, 3, 3, 32, 40\)'):
        model(torch.rand(1, 3, 3, 32, 40))
    with pytest.raises(TypeError, match='expected a floating-point clip'):
        model(torch.zeros(1, 3, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match='expected a torch.Tensor'):
        model(np.zeros((1, 3, 3, 32, 32), np.float32))
    centred = FrameBuffer(tiny_config(frames={'mode': 'centred'}).frames)
    for i, frame in enumerate(random_clip(20, 30)):
        clip = centred.push(frame, i + 1)
    with pytest.raises(ValueError, match='expected target_index 2 .* got 1'):
        detector.detect([clip])


def test_target_frame_follows_frames_mode():
    causal = build_model(tiny_config('lite', 'dis', 'none')).eval()
    centred = build_model(tiny_config('lite', 'dis', 'none', frames={'mode': 'centred'})).eval()
    assert causal.target_index == 2 and centred.target_index == 1
    centred.load_state_dict(causal.state_dict())
    clip = torch.rand(1, 3, 3, 32, 32)
    with torch.no_grad():
        # RGB only: the causal model sees frame 2, the centred one frame 1.
        shifted = clip[:, [0, 2, 1]]
        assert torch.allclose(causal(clip).conf, centred(shifted).conf, atol=1e-6)
        assert not torch.allclose(causal(clip).conf, causal(shifted).conf, atol=1e-4)


def test_detect_restores_training_mode_and_freezing_api():
    detector = build_detector(tiny_config('lite', 'pwc', 'concat'))
    model = detector.model.train()
    detector.detect([random_clip(20, 20)])
    assert model.training
    model.freeze_flow()
    assert not any(p.requires_grad for p in model.motion.flow_subnet.parameters())
    model.unfreeze_flow()
    assert all(p.requires_grad for p in model.motion.flow_subnet.parameters())


def test_precision_and_memory_format_options_on_cpu():
    torch.manual_seed(0)
    base = build_detector(tiny_config('lite', 'dis', 'concat'))
    clip = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        reference = base.model(clip)
    for extra in ({'channels_last': True}, {'precision': 'bf16'}):
        model = build_detector(tiny_config('lite', 'dis', 'concat', **extra))
        model.model.load_state_dict(base.model.state_dict())
        with torch.no_grad(), model._autocast():
            out = model.model(clip)
        tol = 1e-4 if 'channels_last' in extra else 0.1
        assert torch.allclose(out.conf.float(), reference.conf, atol=tol), extra
        assert len(model.detect([random_clip(30, 30)])) == 1
    with pytest.raises(ConfigError, match=r"detector\.precision = 'fp16'.*'cpu'"):
        build_detector(tiny_config('lite', 'dis', 'concat', device='auto', precision='fp16'),
                       device='cpu')


def test_device_resolution():
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(ValueError, match="expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='expected an available CUDA device'):
            resolve_device('cuda:0')


def test_composition_rejects_inconsistent_parts():
    model = build_model(tiny_config('lite', 'dis', 'concat'))
    parts = {'backbone': model.backbone, 'fusion': model.fusion, 'head': model.head,
             'priors': model.priors, 'input_size': 32, 'num_frames': 3, 'target_index': 2,
             'rgb_mean': (0.5, 0.5, 0.5), 'rgb_std': (0.2, 0.2, 0.2)}
    with pytest.raises(ValueError, match='expected a motion stream'):
        STALDetector(motion=None, **parts)
    with pytest.raises(ValueError, match=r'expected target_index in \[0, 3\), got 3'):
        STALDetector(motion=model.motion, **dict(parts, target_index=3))
    with pytest.raises(ValueError, match=r'expected priors of shape \(\d+, 4\) for the head at '
                                         r'input size 64'):
        STALDetector(motion=model.motion, **dict(parts, input_size=64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('precision', ['fp32', 'fp16', 'bf16'])
def test_cuda_matches_cpu(precision):
    torch.manual_seed(0)
    cpu = build_detector(tiny_config('lite', 'pwc', 'concat'))
    gpu = build_detector(tiny_config('lite', 'pwc', 'concat', device='cuda',
                                     precision=precision, channels_last=True))
    gpu.model.load_state_dict(cpu.model.state_dict())
    assert gpu.device.type == 'cuda'
    clip = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        want = cpu.model(clip).conf
        with gpu._autocast():
            got = gpu.model(clip.to(gpu.device)).conf.float().cpu()
    assert torch.allclose(got, want, atol=1e-3 if precision == 'fp32' else 0.1)
    dets = gpu.detect([random_clip(40, 60), random_clip(30, 20)])
    assert len(dets) == 2 and dets[0].boxes.dtype == np.float32


def test_model_stats_counts_parameters_and_flops():
    from stal_ros.tools.model_stats import configurations, format_table, measure
    base = tiny_config('lite', 'dis', 'concat')
    variants = configurations(base, ['lite'], ['concat', 'none'], ['dis', 'farneback'])
    assert [(c.fusion.kind, c.flow.kind) for c in variants] == [
        ('concat', 'dis'), ('concat', 'farneback'), ('none', 'dis')]
    concat, _, rgb_only = (measure(c) for c in variants)
    model = build_model(variants[0])
    assert concat.params == sum(p.numel() for p in model.parameters())
    # The flow path runs the backbone a second time (plus the fusion convs).
    assert 0 < rgb_only.gflops < concat.gflops
    assert rgb_only.flow == '-' and '| lite | none | - |' in format_table([rgb_only], 32)


def test_model_stats_command_measures_the_lite_models_at_their_own_size(capsys):
    """The command builds its configs with the backbone asked for (128 px is too small for VGG)."""
    from stal_ros.tools.model_stats import main
    assert main(['--input-size', '128', '--backbones', 'lite', '--fusions', 'none',
                 '--flows', 'dis']) == 0
    assert '| lite | none | - | 1.80 | 0.00 |' in capsys.readouterr().out
