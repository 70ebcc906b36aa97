# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Readers of UCF101-24 and JHMDB-21 (ACT's annotation pickles, frame folders) on tiny fixtures."""

import json
import os
import pickle
import re

import cv2
import numpy as np
import pytest

from stal_ros.config_base import ConfigError
from stal_ros.data.clips import ClipDataset
from stal_ros.data.public import (FrameSequence, load_annotations, open_dataset, read_pickle,
                                  RefusedPickleError)
from stal_ros.evaluate import main as evaluate_main
from stal_ros.metrics import GroundTruth
from stal_ros.train import load_recipe, training_videos

H, W = 24, 32
LABELS = ['brush_hair', 'catch', 'clap']
# video -> (number of frames, class index)
JHMDB_VIDEOS = {'brush_hair/a1': (10, 0), 'catch/b1': (8, 1), 'clap/c1': (12, 2),
                'catch/b2': (9, 1)}
JHMDB_SPLITS = ([['brush_hair/a1', 'catch/b1'], ['clap/c1', 'catch/b2']],
                [['clap/c1', 'catch/b2'], ['brush_hair/a1', 'catch/b1']],
                [['brush_hair/a1', 'clap/c1', 'catch/b2'], ['catch/b1']])


def _tube(first: int, last: int, x: float) -> np.ndarray:
    """ACT rows (frame 1-based, x1, y1, x2, y2 inclusive) of frames first .. last."""
    frames = np.arange(first, last + 1, dtype=np.float64)
    return np.stack([frames, x + frames, 2 + 0 * frames, x + frames + 9, 2 + 0 * frames + 11],
                    axis=1).astype(np.float32)


def _frames(seed: int, n: int) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB frames, different in every pixel and frame."""
    return np.random.default_rng(seed).integers(0, 256, (n, H, W, 3), dtype=np.uint8)


def _write_frames(folder, frames: np.ndarray, ext: str) -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f'{t + 1:05d}{ext}'), frame[..., ::-1])  # RGB -> BGR


@pytest.fixture
def jhmdb(tmp_path):
    """Write a JHMDB-21-shaped folder: JHMDB-GT.pkl (3 splits) and Frames/<video>/00001.png."""
    root = tmp_path / 'JHMDB'
    frames = {}
    gttubes = {}
    for i, (video, (n, label)) in enumerate(JHMDB_VIDEOS.items()):
        frames[video] = _frames(i, n)
        _write_frames(root / 'Frames' / video, frames[video], '.png')
        gttubes[video] = {label: [_tube(1, n, float(i))]}
    ann = {'labels': LABELS, 'gttubes': gttubes,
           'nframes': {v: n for v, (n, _) in JHMDB_VIDEOS.items()},
           'train_videos': [list(s[0]) for s in JHMDB_SPLITS],
           'test_videos': [list(s[1]) for s in JHMDB_SPLITS],
           'resolution': {v: (H, W) for v in JHMDB_VIDEOS}}
    with open(root / 'JHMDB-GT.pkl', 'wb') as f:
        pickle.dump(ann, f, protocol=2)
    return root, ann, frames


@pytest.fixture
def ucf24(tmp_path):
    """Write a UCF101-24-shaped folder in ROAD's layout: UCF101v2-GT.pkl and rgb-images/*.jpg."""
    root = tmp_path / 'ucf24'
    videos = {'Basketball/v_Basketball_g01_c01': 12, 'Biking/v_Biking_g01_c01': 10}
    for i, (video, n) in enumerate(videos.items()):
        _write_frames(root / 'rgb-images' / video, _frames(10 + i, n), '.jpg')
    # Two tubes of one class in the first video, over parts of it (UCF101-24 is untrimmed).
    gttubes = {'Basketball/v_Basketball_g01_c01': {0: [_tube(3, 7, 1.0), _tube(5, 12, 4.0)]},
               'Biking/v_Biking_g01_c01': {1: [_tube(2, 10, 0.0)]}}
    ann = {'labels': ['Basketball', 'Biking'], 'gttubes': gttubes, 'nframes': videos,
           'train_videos': [['Basketball/v_Basketball_g01_c01']],
           'test_videos': [['Biking/v_Biking_g01_c01']],
           'resolution': {v: (H, W) for v in videos}}
    with open(root / 'UCF101v2-GT.pkl', 'wb') as f:
        pickle.dump(ann, f, protocol=2)
    return root, ann


def test_jhmdb_splits_tubes_and_class_names(jhmdb):
    root, ann, _ = jhmdb
    for index, (train, test) in enumerate(JHMDB_SPLITS):
        for split, names in (('train', train), ('test', test)):
            data = open_dataset('jhmdb', root, split, index)
            assert [v.name for v in data.videos] == names
            assert data.class_names == tuple(LABELS) and data.kind.num_splits == 3
    data = open_dataset('jhmdb', root, 'train', 2)
    for video in data.videos:
        n, label = JHMDB_VIDEOS[video.name]
        assert video.flows is None and video.num_frames == n
        (tube,) = video.tubes
        rows = ann['gttubes'][video.name][label][0]
        assert tube.label == label
        assert tube.frames.tolist() == list(range(n))        # 1-based -> 0-based
        np.testing.assert_array_equal(tube.boxes[:, :2], rows[:, 1:3])
        np.testing.assert_array_equal(tube.boxes[:, 2:], rows[:, 3:5] + 1)   # inclusive +1


def test_ucf24_partial_tubes_rgb_images_layout_and_one_split(ucf24):
    root, ann = ucf24
    (video,) = open_dataset('ucf24', root, 'train').videos
    assert video.frames.shape == (12, H, W, 3)
    first, second = sorted(video.tubes, key=lambda t: t.frames[0])
    assert first.frames.tolist() == [2, 3, 4, 5, 6]
    assert second.frames.tolist() == list(range(4, 12))
    np.testing.assert_array_equal(first.boxes[0], [1 + 3, 2, 1 + 3 + 9 + 1, 2 + 11 + 1])
    assert video.frames[0].dtype == np.uint8 and video.frames[0].shape == (H, W, 3)
    with pytest.raises(ValueError, match=r'split_index = 1: .*UCF101-24 has 1 split\)'):
        open_dataset('ucf24', root, 'test', 1)
    with pytest.raises(ValueError, match=r"kind = 'ucf101'"):
        open_dataset('ucf101', root, 'test')
    with pytest.raises(ValueError, match=r"split = 'val'"):
        open_dataset('ucf24', root, 'val')


def test_ground_truth_matches_the_videos(jhmdb):
    root, ann, _ = jhmdb
    data = open_dataset('jhmdb', root, 'test', 0)
    gt = data.ground_truth()
    assert isinstance(gt, GroundTruth) and gt.num_classes == 3
    assert gt.class_names == tuple(LABELS)
    assert list(gt.videos) == ['clap/c1', 'catch/b2']
    assert gt.videos['clap/c1'].num_frames == 12
    # The same tubes as GroundTruth.from_act on the file, frame numbers one lower.
    act = GroundTruth.from_act(ann['gttubes'], ann['nframes'], ann['labels'],
                               ann['test_videos'][0])
    for name in gt.videos:
        (ours,), (theirs,) = gt.videos[name].tubes, act.videos[name].tubes
        assert ours.label == theirs.label
        np.testing.assert_array_equal(ours.frames, theirs.frames - 1)
        np.testing.assert_array_equal(ours.boxes, theirs.boxes)
    assert [len(t.frames) for t in gt.tubes(1)] == [9]
    cut = data.head(1)
    assert list(cut.ground_truth().videos) == ['clap/c1'] and len(data) == 2


def test_frames_are_lazy_and_exact(jhmdb, monkeypatch):
    root, _, frames = jhmdb
    video = open_dataset('jhmdb', root, 'test', 0).videos[0]
    expected = frames[video.name]
    reads = []
    real = cv2.imread
    monkeypatch.setattr(cv2, 'imread', lambda *a: reads.append(a[0]) or real(*a))
    assert video.frames.shape == (12, H, W, 3) and len(video.frames) == 12
    assert reads == []                              # the shape comes from the annotations
    np.testing.assert_array_equal(video.frames[3], expected[3])
    np.testing.assert_array_equal(video.frames[-1], expected[-1])
    np.testing.assert_array_equal(video.frames[2:7:2], expected[2:7:2])
    assert video.frames[5:5].shape == (0, H, W, 3)
    assert len(reads) == 1 + 1 + 3
    np.testing.assert_array_equal(np.stack(list(video.frames)), expected)
    with pytest.raises(IndexError, match='frame 12 out of range'):
        video.frames[12]


def test_missing_or_wrong_frames_name_the_path(jhmdb):
    root, _, _ = jhmdb
    video = open_dataset('jhmdb', root, 'test', 0).videos[0]
    missing = root / 'Frames' / video.name / '00004.png'
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match=re.escape(f'{missing}: frame 3 of video')):
        video.frames[3]
    with pytest.raises(FileNotFoundError, match='00004.png'):
        video.frames[0:6]
    # A missing last frame or folder is found when the split is opened.
    os.remove(root / 'Frames' / 'clap' / 'c1' / '00012.png')
    with pytest.raises(FileNotFoundError, match=r'00012\.png: frame of video .clap/c1.'):
        open_dataset('jhmdb', root, 'test', 0)
    (root / 'Frames' / 'clap' / 'c1').rename(root / 'elsewhere')
    with pytest.raises(FileNotFoundError, match=r'Frames/clap/c1: frame folder'):
        open_dataset('jhmdb', root, 'test', 0)
    # A frame whose size is not the annotated resolution.
    wrong = FrameSequence([root / 'Frames' / 'catch' / 'b2' / '00001.png'], (H + 1, W), 'x')
    with pytest.raises(ValueError, match=f'is {W} x {H} pixels, expected {W} x {H + 1}'):
        wrong[0]


def test_refuses_a_pickle_that_runs_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, ('touch ' + str(tmp_path / 'pwned'),)

    path = tmp_path / 'JHMDB-GT.pkl'
    path.write_bytes(pickle.dumps({'labels': ['a'], 'x': Evil()}, protocol=2))
    with pytest.raises(RefusedPickleError, match=re.escape(f'{path}: refused to load the '
                                                           'global ') + r'(posix|os|nt)\.system'):
        load_annotations(path)
    assert not (tmp_path / 'pwned').exists()
    (tmp_path / 'Frames').mkdir()
    with pytest.raises(RefusedPickleError):
        open_dataset('jhmdb', tmp_path, 'test')
    path.write_bytes(pickle.dumps({'f': eval}, protocol=2))
    with pytest.raises(RefusedPickleError, match=r'(__builtin__|builtins)\.eval'):
        read_pickle(path)


def _py2_string(data: bytes) -> bytes:
    return b'U' + bytes([len(data)]) + data                  # SHORT_BINSTRING (a Python-2 str)


def _py2_array(array: np.ndarray) -> bytes:
    """Protocol-2 opcodes of a float64 array as Python 2 + numpy 1 wrote them."""
    array = np.ascontiguousarray(array, '<f8')
    out = (b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85'
           + _py2_string(b'b') + b'\x87R(K\x01'
           + b''.join(b'K' + bytes([n]) for n in array.shape) + b'\x86')
    out += (b'cnumpy\ndtype\n' + _py2_string(b'f8') + b'K\x00K\x01\x87R(K\x03'
            + _py2_string(b'<') + b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb')
    return out + b'\x89' + _py2_string(array.tobytes()) + b'tb'


def test_reads_a_python2_pickle_with_numpy1_names(tmp_path):
    rows = _tube(1, 3, 0.0).astype(np.float64)
    body = (b'\x80\x02}(' + _py2_string(b'labels') + b']' + _py2_string(b'caf\xe9') + b'a'
            + _py2_string(b'nframes') + b'}' + _py2_string(b'caf\xe9/v') + b'K\x03s'
            + _py2_string(b'gttubes') + b'}' + _py2_string(b'caf\xe9/v') + b'}K\x00]'
            + _py2_array(rows) + b'ass'
            + _py2_string(b'train_videos') + b']]' + _py2_string(b'caf\xe9/v') + b'aa'
            + _py2_string(b'test_videos') + b']]a'
            + b'u.')
    path = tmp_path / 'UCF101v2-GT.pkl'
    path.write_bytes(body)
    ann = load_annotations(path)
    assert ann.labels == ('café',) and ann.nframes == {'café/v': 3}
    np.testing.assert_array_equal(ann.gttubes['café/v'][0][0], rows)
    assert ann.train_videos == (('café/v',),) and ann.test_videos == ((),)


def test_bad_annotations_name_the_entry(tmp_path):
    path = tmp_path / 'JHMDB-GT.pkl'
    good = {'labels': ['a'], 'gttubes': {'a/v': {0: [_tube(1, 4, 0.0)]}}, 'nframes': {'a/v': 3},
            'train_videos': [['a/v']], 'test_videos': [[]]}
    path.write_bytes(pickle.dumps(good, protocol=2))
    with pytest.raises(ValueError, match=r"gttubes\['a/v'\]\[0\]: frames 1 .. 4, expected 1 "
                       r'.. nframes = 3'):
        load_annotations(path)
    evil_name = dict(good, gttubes={}, nframes={'../../etc': 3}, train_videos=[['../../etc']])
    path.write_bytes(pickle.dumps(evil_name, protocol=2))
    with pytest.raises(ValueError, match=r"'../../etc' is not a relative folder name"):
        load_annotations(path)
    both = dict(good, gttubes={}, test_videos=[['a/v']])
    path.write_bytes(pickle.dumps(both, protocol=2))
    with pytest.raises(ValueError, match="split 0 lists 'a/v'.* in both"):
        load_annotations(path)
    with pytest.raises(FileNotFoundError, match='nowhere.pkl: annotation file not found'):
        load_annotations(tmp_path / 'nowhere.pkl')


def test_clip_dataset_takes_the_videos(jhmdb):
    root, ann, frames = jhmdb
    data = open_dataset('jhmdb', root, 'train', 0)
    clips = ClipDataset(data.videos, class_names=data.class_names, num_frames=3,
                        target_index=2, input_size=W, augment=None, with_flows=True)
    assert len(clips) == (10 - 2) + (8 - 2)
    sample = clips[0]
    assert sample.clip.shape == (3, 3, W, W) and sample.flows is None
    assert sample.labels.tolist() == [0]
    # Target frame 2 of brush_hair/a1: ACT row 3 (x1 = 0 + 3, x2 = 12 inclusive -> 13).
    np.testing.assert_allclose(sample.boxes[0].numpy(), [3 / W, 2 / H, 13 / W, 14 / H],
                               atol=1e-6)
    expected = cv2.resize(frames['brush_hair/a1'][0].astype(np.float32) / 255, (W, W),
                          interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(sample.clip[0].numpy().transpose(1, 2, 0), expected, atol=1e-5)


def test_training_recipe_reads_a_public_split(jhmdb):
    root, _, _ = jhmdb
    recipe = load_recipe(None, ['data.dataset=jhmdb', f'data.root={root}',
                                'data.split_index=1', f'detector.class_names={LABELS}'])
    videos = training_videos(recipe)
    assert [v.name for v in videos] == JHMDB_SPLITS[1][0]
    with pytest.raises(ConfigError, match=r'detector.class_names = .*expected the JHMDB-21 '
                       r"classes of .*\['brush_hair', 'catch', 'clap'\]"):
        training_videos(load_recipe(None, ['data.dataset=jhmdb', f'data.root={root}']))
    with pytest.raises(ConfigError, match=r'data.split_index = 1: expected 0 .. 0 '
                       r'\(UCF101-24 has 1 split\)'):
        load_recipe(None, ['data.dataset=ucf24', 'data.root=x', 'data.split_index=1'])
    with pytest.raises(ConfigError, match=r"data.root = '': expected the JHMDB-21 folder"):
        load_recipe(None, ['data.dataset=jhmdb'])
    with pytest.raises(ConfigError, match=r'train.flow_pretrain_iterations = 10: expected 0 '
                       r"with data.dataset = 'jhmdb'"):
        load_recipe(None, ['data.dataset=jhmdb', 'data.root=x', f'detector.class_names={LABELS}',
                           'train.flow_pretrain_iterations=10'])
    with pytest.raises(ConfigError, match=r"data.dataset = 'ava': expected one of"):
        load_recipe(None, ['data.dataset=ava'])


def test_evaluate_rejects_a_bad_split_index(jhmdb, capsys):
    root, _, _ = jhmdb
    with pytest.raises(SystemExit) as exc:
        evaluate_main(['--model', 'absent.pt', '--dataset', 'jhmdb', '--root', str(root),
                       '--split-index', '3'])
    assert exc.value.code == 2
    assert '--split-index 3: expected 0 .. 2 (JHMDB-21 has 3 splits)' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_main(['--model', 'absent.pt', '--dataset', 'jhmdb'])
    assert 'expected --root' in capsys.readouterr().err
    (root / 'JHMDB-GT.pkl').write_bytes(pickle.dumps({'f': os.system}, protocol=2))
    with pytest.raises(SystemExit):
        evaluate_main(['--model', 'absent.pt', '--dataset', 'jhmdb', '--root', str(root)])
    assert re.search(r'refused to load the global (posix|os|nt)\.system', capsys.readouterr().err)


def test_evaluate_runs_on_a_public_split(jhmdb, tmp_path):
    from stal_ros.config import DetectorConfig
    from stal_ros.net.checkpoint import save_checkpoint
    from stal_ros.net.detector import build_model
    root, _, _ = jhmdb
    config = DetectorConfig.from_dict({
        'input_size': 64, 'class_names': LABELS, 'device': 'cpu',
        'backbone': {'kind': 'lite', 'width': 0.25, 'batch_norm': True},
        'flow': {'kind': 'dis', 'input_size': [64, 64]}, 'fusion': {'kind': 'concat'}})
    model = save_checkpoint(tmp_path / 'tiny.pt', build_model(config), config)
    out = tmp_path / 'report'
    assert evaluate_main(['--model', str(model), '--dataset', 'jhmdb', '--root', str(root),
                          '--split', 'test', '--split-index', '2', '--out', str(out)]) == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['dataset'] == 'jhmdb' and report['count'] == 1
    assert report['num_frames'] == 8                          # catch/b1, the one test video
    # Every annotated frame of the split is a ground-truth box of its class (0-based frames).
    assert [row['num_gt'] for row in report['frame_classes']] == [0, 8, 0]
