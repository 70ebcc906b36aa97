# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The demo end to end (real node process, image publisher, DDS) and its ROS-free parts."""

import pathlib
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from stal_ros.data.motion import CLASS_NAMES

REPO = pathlib.Path(__file__).resolve().parents[1]
VIDEOS, FRAMES = 2, 12


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory) -> str:
    """Save a tiny randomly initialised lite + DIS model with the 9 benchmark classes."""
    torch = pytest.importorskip('torch')
    from stal_ros.config import BackboneConfig, DetectorConfig, FlowConfig
    from stal_ros.net.checkpoint import save_checkpoint
    from stal_ros.net.detector import build_model
    torch.manual_seed(0)
    cfg = DetectorConfig(backbone=BackboneConfig(kind='lite', width=0.25),
                         flow=FlowConfig(kind='dis', input_size=(64, 64)), input_size=64,
                         class_names=CLASS_NAMES, device='cpu')
    return str(save_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.pt',
                               build_model(cfg), cfg))


def run_demo(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'stal_ros.ros.demo', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.ros
def test_demo_writes_the_annotated_video_contact_sheet_and_summary(
        ros_domain, tiny_model, tmp_path):
    pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')
    out = tmp_path / 'out'
    # A random model scores about 1/10 per class: a low threshold gives it tubes to show.
    done = run_demo('--videos', str(VIDEOS), '--frames', str(FRAMES), '--rate', '5',
                    '--threshold', '0.1', '--out', str(out), '--model', tiny_model)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    total = VIDEOS * FRAMES
    results = re.search(r'results for (\d+) of (\d+) frames .*; (\d+) annotated frames', log)
    assert results, log
    processed, published, annotated = map(int, results.groups())
    assert published == total
    # K = 3 causal clips, padded: every frame can have a result; a loaded CPU may skip some
    # (the node's latest-frame policy), never half.
    assert total // 2 <= processed <= total, log
    assert annotated == processed, log

    capture = cv2.VideoCapture(str(out / 'annotated.mp4'))
    assert capture.isOpened()
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    assert len(frames) == annotated
    assert frames[0].shape == (128 * 4, 128 * 4, 3)

    sheet = cv2.imread(str(out / 'contact_sheet.png'))
    assert sheet is not None and sheet.shape[1] == 4 * 384
    assert len(list((out / 'stream').glob('*.png'))) == total

    lines = log.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r'\d+ tubes of at least 4', line))
    assert lines[header + 1].split() == ['tube', 'action', 'clip', 'frames', '(time)',
                                         'length', 'score']
    truth = next(i for i, line in enumerate(lines) if line.startswith('Ground truth'))
    for row in lines[header + 2:truth]:      # stal_node/3  jump  0  4-9 (0.4-1.0 s)  6  0.11
        assert re.fullmatch(r'  stal_node/\d+ +(\w+) +\d+ +(\d+)-(\d+) \([\d.]+-[\d.]+ s\) +'
                            r'(\d+) +[01]\.\d\d', row), row
        name, first, last, length = re.fullmatch(r'  \S+ +(\w+) +\d+ +(\d+)-(\d+) .* (\d+) +\S+',
                                                 row).groups()
        assert name in CLASS_NAMES and int(last) - int(first) + 1 == int(length) >= 4
    clips = [line for line in lines if line.startswith('  clip ')]
    assert [c.split(':')[0] for c in clips] == ['  clip 0 (frames 0-11)',
                                                '  clip 1 (frames 12-23)']
    assert re.search(r'^Found \d+ of \d+ true actions\.$', log, re.M)


@pytest.mark.ros
def test_demo_fails_with_a_clear_message(ros_domain, tmp_path):
    pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')
    missing = run_demo('--out', str(tmp_path / 'a'), '--model', str(tmp_path / 'none.pt'))
    assert missing.returncode == 1
    assert 'demo failed' in missing.stderr and 'none.pt' in missing.stderr
    broken = tmp_path / 'broken.pt'
    broken.write_bytes(b'not a checkpoint')
    failed = run_demo('--videos', '1', '--frames', '5', '--out', str(tmp_path / 'b'),
                      '--model', str(broken))
    assert failed.returncode == 1
    # Read before the node starts, for its clip length: a clear error, not a node crash.
    assert 'demo failed: checkpoint' in failed.stderr and 'cannot be read' in failed.stderr, \
        failed.stderr


def test_summary_lists_tubes_and_compares_with_the_truth():
    from stal_ros.ros.demo_support import make_stream, summary_lines, TubeLog
    videos = make_stream(1, 40)
    gt = videos[0].tubes[0]
    log = TubeLog()
    # A tube that is the first true action, and a short one that is not listed.
    log.add('cam/1', gt.class_name, 0.8, False, list(zip(gt.frames, gt.boxes)))
    log.add('cam/2', 'jump', 0.4, True, [(0, [0, 0, 5, 5])])
    lines = summary_lines(log, videos, rate=10.0)
    assert lines[0] == '1 tubes of at least 4 frames (1 shorter ones not listed):'
    first, last = int(gt.frames[0]), int(gt.frames[-1])
    assert lines[2].split()[:4] == ['cam/1', gt.class_name, '0', f'{first}-{last}']
    assert lines[4] == '  clip 0 (frames 0-39):'
    assert lines[5].split() == [gt.class_name, f'{first}-{last}',
                                f'({first / 10:.1f}-{(last + 1) / 10:.1f}', 's)', 'found', 'by',
                                'cam/1', '(ST-IoU', '1.00)']
    assert lines[-1] == f'Found 1 of {len(videos[0].tubes)} true actions.'


def test_result_stamps_map_to_the_frames_the_model_localised():
    """A centred 5-frame model localises frames 2 .. total - 3: its stamps say which."""
    from stal_ros.ros.demo_support import stream_frames
    total, rate, start = 40, 10.0, 1_700_000_000_000_000_000
    localised = range(2, total - 2)
    stamps = [start + round(i * 1e9 / rate) + 3_000_000 for i in localised]  # publisher 3 ms late
    assert stream_frames(stamps, total, rate, latency=2) == dict(zip(stamps, localised))
    assert stream_frames([], total, rate) == {}


def test_contact_sheet_layout():
    from stal_ros.ros.demo_support import contact_sheet, sheet_frames
    assert sheet_frames(80, 40) == [13, 26, 53, 66]
    tiles = [(np.zeros((128, 128, 3), np.uint8), ['a', 'b'], np.array([[10, 10, 50, 60]]))] * 5
    sheet = contact_sheet(tiles, columns=4, tile_size=256)
    assert sheet.shape[1] == 1024 and sheet.shape[0] % 2 == 0 and sheet.shape[0] > 2 * 256
    # The true box, dashed white: on its top edge, not inside.
    assert sheet[20, 20:100].max() > 200 and sheet[40:100, 40:80].max() == 0
