# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The flow-subnet interface, classical flows, flow fusion, the motion stream and the flow loss."""

import pytest
import torch
import torch.nn.functional as F

from stal_ros.config import FlowConfig, FramesConfig
from stal_ros.net.classical_flow import ClassicalFlow, to_grey_uint8
from stal_ros.net.flow import (build_flow_subnet, build_motion_stream, FLOW_NORM, FlowOutput,
                               FlowSubnet, FlowToImage, MotionOutput, MotionStream, resize_flow)
from stal_ros.net.flow_loss import endpoint_error, level_losses, multiscale_flow_loss
from stal_ros.net.pwc import PWCNet

TINY_PWC = {'pyramid_channels': (4, 8), 'estimator_channels': (8, 4),
            'context_channels': (8, 4), 'context_dilations': (1, 2), 'search_range': 2}


def texture(h, w, seed=0):
    """(1, 3, h, w) smooth multiscale random texture in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    t = sum(F.interpolate(torch.rand(1, 3, h // s, w // s, generator=g), size=(h, w),
                          mode='bicubic', align_corners=False) for s in (2, 4, 8, 16))
    t = t - t.amin()
    return t / t.amax()


def shifted_pair(h, w, dx, dy, seed=0):
    """Integer shift by cropping: img1(p) = img2(p + (dx, dy)), i.e. the flow is (dx, dy)."""
    m = 8
    tex = texture(h + 2 * m, w + 2 * m, seed)
    img1 = tex[..., m:m + h, m:m + w]
    img2 = tex[..., m - dy:m - dy + h, m - dx:m - dx + w]
    return img1.contiguous(), img2.contiguous()


@pytest.mark.parametrize('kind, preset', [('dis', 'fast'), ('dis', 'medium'),
                                          ('farneback', 'fast')])
def test_classical_flow_recovers_known_shift_at_any_frame_size(kind, preset):
    # Frames 96x128 go through the default 320x320 flow input and come back rescaled.
    img1, img2 = shifted_pair(96, 128, dx=3, dy=-2)
    subnet = build_flow_subnet(FlowConfig(kind=kind, dis_preset=preset))
    assert not subnet.learned and subnet.input_size == (320, 320)
    out = subnet(img1, img2)
    assert isinstance(out, FlowOutput) and out.pyramid == []
    assert out.flow.shape == (1, 2, 96, 128) and out.flow.dtype == torch.float32
    assert not out.flow.requires_grad
    inner = out.flow[0, :, 16:-16, 16:-16].flatten(1).median(1).values
    torch.testing.assert_close(inner, torch.tensor([3.0, -2.0]), rtol=0, atol=0.3)


def test_classical_flow_of_identical_frames_is_zero_and_batched():
    img = torch.cat([texture(64, 64, seed=s) for s in range(3)])
    out = FlowSubnet(estimator=ClassicalFlow('dis'), input_size=(64, 64))(img, img)
    assert out.flow.shape == (3, 2, 64, 64)
    assert out.flow.abs().max() < 0.05


def test_classical_flow_cache_computes_a_pair_once_and_gives_the_same_flow():
    frames = [texture(64, 64, seed=s) for s in range(4)]
    cached, fresh = ClassicalFlow('dis', cache_pairs=2), ClassicalFlow('dis', cache_pairs=0)
    pairs = [(0, 1), (1, 2), (0, 1), (2, 3), (0, 1), (1, 2)]
    for a, b in pairs:
        got, _ = cached(frames[a], frames[b])
        want, _ = fresh(frames[a], frames[b])
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # (0, 1) is found twice (used last, it stays); (1, 2) was evicted by (2, 3) (LRU of 2).
    assert cached.cache_info() == (2, 4, 2, 2)
    assert fresh.cache_info() == (0, 6, 0, 0)
    # (2, 3) was evicted by (1, 2); the same frames in the other order are another pair.
    both = torch.cat([frames[2], frames[3]])
    cached(both, torch.cat([frames[3], frames[2]]))
    assert cached.cache_info().hits == 2 and cached.cache_info().misses == 6
    cached.cache_clear()
    assert cached.cache_info() == (0, 0, 2, 0)


def test_classical_flow_cache_checks_the_images_not_only_their_hash():
    flow = ClassicalFlow('dis', cache_pairs=4)
    img1, img2 = shifted_pair(64, 64, dx=2, dy=0)
    first, _ = flow(img1, img2)
    # Plant the first pair's flow under the key of another pair: a hash collision.
    grey = [to_grey_uint8(img)[0] for img in (img1, img2)]
    other = [to_grey_uint8(img)[0] for img in (img2, img1)]
    key = hash((other[0].shape, other[0].tobytes(), other[1].tobytes()))
    flow._cache[key] = (grey[0], grey[1], flow._cache.popitem()[1][2])
    back, _ = flow(img2, img1)
    assert flow.cache_info().misses == 2
    assert first[:, 0].median() > 1.5 and back[:, 0].median() < -1.5   # x: +2 then -2


def test_classical_flow_rejects_unknown_method():
    with pytest.raises(ValueError, match=r"expected method in \['dis', 'farneback'\], got 'x'"):
        ClassicalFlow('x')


def test_resize_flow_rescales_vectors():
    flow = torch.ones(1, 2, 10, 20)
    flow[:, 1] = -2.0
    out = resize_flow(flow, (30, 10))
    assert out.shape == (1, 2, 30, 10)
    torch.testing.assert_close(out[:, 0], torch.full((1, 30, 10), 0.5))     # x * 10 / 20
    torch.testing.assert_close(out[:, 1], torch.full((1, 30, 10), -6.0))    # y * 30 / 10
    torch.testing.assert_close(resize_flow(flow, (5, 10), mode='area'), flow[..., :5, :10] / 2)


def test_pwc_subnet_resizes_to_input_size_and_back():
    torch.manual_seed(0)
    subnet = build_flow_subnet(FlowConfig(input_size=(64, 64), **TINY_PWC))
    assert subnet.learned
    out = subnet(torch.rand(2, 3, 50, 70), torch.rand(2, 3, 50, 70))
    assert out.flow.shape == (2, 2, 50, 70) and out.flow.requires_grad
    assert [p.shape for p in out.pyramid] == [(2, 2, 16, 16)]
    # The output is the 1/4 estimate resized: x scaled by 70 / 16, y by 50 / 16.
    torch.testing.assert_close(out.flow, resize_flow(out.pyramid[0], (50, 70)))


def test_build_flow_subnet_from_config():
    pwc = build_flow_subnet(FlowConfig(input_size=(128, 192)))
    assert isinstance(pwc.estimator, PWCNet) and pwc.input_size == (128, 192)
    assert pwc.estimator.num_levels == 6 and pwc.estimator.context is not None
    no_ctx = build_flow_subnet(FlowConfig(context_network=False, search_range=2))
    assert no_ctx.estimator.context is None and no_ctx.estimator.search_range == 2
    with pytest.raises(TypeError, match='expected a FlowConfig'):
        build_flow_subnet({'kind': 'pwc'})


def test_flow_to_image_normalises_and_fuses():
    fuse = FlowToImage(2)
    assert fuse.conv.in_channels == 4 and fuse.conv.out_channels == 3
    with torch.no_grad():
        fuse.conv.weight.zero_()
        fuse.conv.weight[0, 0] = 1.0          # output 0 = x of the first pair
        fuse.conv.weight[1, 3] = 1.0          # output 1 = y of the second pair
    f1 = torch.zeros(1, 2, 10, 20)
    f1[:, 0] = 4.0
    f2 = torch.zeros(1, 2, 10, 20)
    f2[:, 1] = -2.0
    img = fuse([f1, f2], (30, 10))
    assert img.shape == (1, 3, 30, 10)
    # Vectors rescaled to the output grid (x * 10/20, y * 30/10), then divided by FLOW_NORM.
    torch.testing.assert_close(img[0, 0], torch.full((30, 10), 2.0 / FLOW_NORM))
    torch.testing.assert_close(img[0, 1], torch.full((30, 10), -6.0 / FLOW_NORM))
    torch.testing.assert_close(img[0, 2], torch.zeros(30, 10))


def tiny_motion_stream(num_frames=3):
    torch.manual_seed(0)
    subnet = build_flow_subnet(FlowConfig(input_size=(64, 64), **TINY_PWC))
    return MotionStream(flow_subnet=subnet, to_image=FlowToImage(num_frames - 1),
                        num_frames=num_frames)


def test_motion_stream_batches_adjacent_pairs_like_separate_calls():
    stream = tiny_motion_stream().eval()
    clip = torch.rand(2, 3, 3, 40, 48)
    with torch.no_grad():
        out = stream(clip, (32, 36))
        assert isinstance(out, MotionOutput)
        assert out.image.shape == (2, 3, 32, 36)
        assert len(out.flows) == 2 and len(out.pyramids) == 2
        for p in range(2):                    # pair p = (frame p, frame p + 1)
            alone = stream.flow_subnet(clip[:, p], clip[:, p + 1])
            torch.testing.assert_close(out.flows[p], alone.flow, rtol=1e-4, atol=1e-5)
            assert len(out.pyramids[p]) == 1
            torch.testing.assert_close(out.pyramids[p][0], alone.pyramid[0],
                                       rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.image, stream.to_image(out.flows, (32, 36)))


def test_motion_stream_freeze_and_unfreeze():
    stream = tiny_motion_stream()
    clip = torch.rand(1, 3, 3, 32, 32)
    stream.freeze_flow()
    stream.train()
    assert stream.training and stream.to_image.training and not stream.flow_subnet.training
    assert not any(p.requires_grad for p in stream.flow_subnet.parameters())
    out = stream(clip, (32, 32))
    assert not out.flows[0].requires_grad and out.image.requires_grad
    out.image.sum().backward()
    assert stream.to_image.conv.weight.grad is not None
    stream.unfreeze_flow()
    assert stream.flow_subnet.training
    assert all(p.requires_grad for p in stream.flow_subnet.parameters())
    out = stream(clip, (32, 32))
    multiscale_flow_loss(out.pyramids[1], torch.zeros(1, 2, 32, 32), (1.0,)).backward()
    assert stream.flow_subnet.estimator.pyramid.levels[0][0][0].weight.grad is not None
    stream.eval()
    stream.unfreeze_flow()
    assert not stream.flow_subnet.training    # follows the stream's mode


def test_build_motion_stream_classical_k4():
    stream = build_motion_stream(FlowConfig(kind='farneback', input_size=(64, 64)),
                                 FramesConfig(num_frames=4))
    assert stream.num_frames == 4 and stream.to_image.num_pairs == 3
    img1, img2 = shifted_pair(64, 64, dx=2, dy=1)
    clip = torch.stack([img1, img2, img1, img1], 1)       # (1, 4, 3, 64, 64)
    out = stream(clip, (64, 64))
    assert len(out.flows) == 3 and out.pyramids == [[], [], []]
    inner = [f[0, :, 16:-16, 16:-16].flatten(1).median(1).values for f in out.flows]
    torch.testing.assert_close(inner[0], torch.tensor([2.0, 1.0]), rtol=0, atol=0.3)
    torch.testing.assert_close(inner[1], torch.tensor([-2.0, -1.0]), rtol=0, atol=0.3)
    torch.testing.assert_close(inner[2], torch.zeros(2), rtol=0, atol=0.05)


def test_motion_stream_parts_must_agree():
    with pytest.raises(ValueError, match='to_image for 2 pairs'):
        MotionStream(flow_subnet=tiny_motion_stream().flow_subnet, to_image=FlowToImage(1),
                     num_frames=3)


def test_endpoint_error_literal():
    flow = torch.zeros(1, 2, 1, 2)
    gt = torch.tensor([[[[3.0, 0.0]], [[4.0, 1.0]]]])
    torch.testing.assert_close(endpoint_error(flow, gt), torch.tensor([[[5.0, 1.0]]]))


def test_multiscale_flow_loss_literal_values_and_units():
    """Levels finest first, weights coarsest first, errors in pixels of the ground truth."""
    gt = torch.zeros(2, 2, 16, 16)
    gt[:, 0] = 8.0                              # 8 px right at 16x16
    perfect = [torch.zeros(2, 2, 8, 8), torch.zeros(2, 2, 4, 4)]
    perfect[0][:, 0] = 4.0                      # 4 px at 8x8
    perfect[1][:, 0] = 2.0                      # 2 px at 4x4
    assert multiscale_flow_loss(perfect, gt, (0.32, 0.08)) == 0
    off = [p.clone() for p in perfect]
    off[0][:, 1] += 1.0                         # 1 px of 8x8 = EPE 2 px of 16x16, 64 cells
    off[1][:, 0] += 3.0                         # 3 px of 4x4 = EPE 12 px, 16 cells
    # The finest level takes the last weight, the coarser one the weight before it.
    torch.testing.assert_close(multiscale_flow_loss(off, gt, (0.32, 0.08)),
                               torch.tensor(0.08 * 2 * 64 + 0.32 * 12 * 16))
    torch.testing.assert_close(multiscale_flow_loss(off, gt, (0.32, 0.08, 0.02)),
                               torch.tensor(0.02 * 2 * 64 + 0.08 * 12 * 16))
    torch.testing.assert_close(multiscale_flow_loss(off, gt, (0.32, 0.08), reduction='mean'),
                               torch.tensor(0.08 * 2 + 0.32 * 12))


def test_pwc_net_weights_share_a_uniform_error_as_pwc_net_does():
    """Paper eq. 1 with PWC-Net's weights: 0.32 on the coarsest level, 0.005 on the finest.

    A uniform 4 px error at 320x320 on the five estimated levels (80 .. 5 cells a side): each
    level weighs alpha_l x cells x 4 px = 128, 64, 32, 32, 32 from the finest level up, i.e.
    44, 22, 11, 11, 11 % (with the weights applied finest first, as before, the finest level
    carried ~97 % and the coarsest ~4e-6).
    """
    gt = torch.zeros(1, 2, 320, 320)
    gt[:, 0] = 6.0
    pyramid = []
    for level in range(2, 7):                   # finest (1/4) first, flow in level pixels
        side = 320 // 2 ** level
        estimate = torch.zeros(1, 2, side, side)
        estimate[:, 0] = 6.0 / 2 ** level
        estimate[:, 1] = 4.0 / 2 ** level       # 4 px of the 320x320 frames in y
        pyramid.append(estimate)
    terms = torch.stack(level_losses(pyramid, gt, FlowConfig().loss_weights))
    shares = terms / terms.sum()
    torch.testing.assert_close(shares, torch.tensor([128.0, 64.0, 32.0, 32.0, 32.0]) / 288)
    # The finest term is 0.005 * 80 * 80 cells * 4 px.
    torch.testing.assert_close(terms[0], torch.tensor(0.005 * 80 * 80 * 4))


def test_multiscale_flow_loss_validation():
    pyr = [torch.zeros(1, 2, 4, 4)]
    with pytest.raises(ValueError, match='at least 2 weights'):
        multiscale_flow_loss(pyr * 2, torch.zeros(1, 2, 8, 8), (1.0,))
    with pytest.raises(ValueError, match='at least one pyramid level'):
        multiscale_flow_loss([], torch.zeros(1, 2, 8, 8), (1.0,))
    with pytest.raises(ValueError, match='reduction'):
        multiscale_flow_loss(pyr, torch.zeros(1, 2, 8, 8), (1.0,), reduction='max')


def test_subtract_median_removes_the_camera_translation():
    from stal_ros.net.flow import subtract_median
    flow = torch.empty(1, 2, 16, 16)
    flow[:, 0], flow[:, 1] = 2.0, -1.0                 # the pan: the whole background
    flow[:, 0, 4:8, 4:8], flow[:, 1, 4:8, 4:8] = 5.0, 0.0   # an actor moving right, faster
    out = subtract_median(flow)
    assert out[0, :, 0, 0].tolist() == [0.0, 0.0]
    assert out[0, :, 5, 5].tolist() == [3.0, 1.0]       # the actor relative to the scene
    image = FlowToImage(1, compensate_camera=True)
    with torch.no_grad():
        uniform = image([torch.full((2, 2, 8, 8), 3.0)], (8, 8))
    assert torch.equal(uniform, torch.zeros_like(uniform))   # a pure pan shows no motion
    stream = build_motion_stream(FlowConfig(kind='dis', input_size=(64, 64),
                                            compensate_camera=True), FramesConfig())
    assert stream.to_image.compensate_camera


def test_full_resolution_dis_sees_small_actors_move():
    """At 128 x 128 the fast preset estimates at 32 x 32; finest scale 0 follows the actors."""
    import numpy as np
    from stal_ros.data.motion import make_video, MotionConfig
    video = make_video(3, MotionConfig(classes=('run_right',), max_actors=1, pan_prob=0.0,
                                       occlusion_prob=0.0))
    tube = video.tubes[0]
    frames = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 255.0
    errors = {}
    for scale in (-1, 0):
        dis = ClassicalFlow('dis', dis_preset='fast', finest_scale=scale)
        flow, _ = dis(frames[:-1], frames[1:])
        err = []
        for f, box in zip(tube.frames[:-1], tube.boxes[:-1]):
            x1, y1, x2, y2 = (int(round(c)) for c in box)
            mask = video.flow_valid[f, y1:y2, x1:x2]
            gt = video.flows[f, y1:y2, x1:x2][mask]
            est = flow[f].permute(1, 2, 0).numpy()[y1:y2, x1:x2][mask]
            err.append(np.linalg.norm(gt - est, axis=1).mean())
        errors[scale] = float(np.mean(err))
    assert errors[0] < 0.6 * errors[-1], errors
    with pytest.raises(ValueError, match='finest_scale >= -1'):
        ClassicalFlow('dis', finest_scale=-2)
    with pytest.raises(ValueError, match='expected cache_pairs >= 0, got -1'):
        ClassicalFlow('dis', cache_pairs=-1)
