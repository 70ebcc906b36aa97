# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""DetectorConfig and its sections: defaults, YAML-like dicts, dotted errors."""

import pytest
import yaml

from stal_ros.config import (ConfigError, DetectorConfig, HeadConfig, PostprocessConfig,
                             UCF101_24_CLASSES)

YAML = '''
input_size: 320
class_names: [run, jump]
precision: bf16
channels_last: true
frames: {num_frames: 3, mode: centred}
flow: {kind: dis, dis_preset: ultrafast}
backbone: {kind: lite, width: 0.5}
fusion: {kind: stfp}
head:
  scales: [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
  aspect_ratios: [2, 3]
  ratios_per_scale: [1, 2, 2, 2, 1, 1]
postprocess: {score_threshold: 0.05, nms_iou: 0.5, top_k: 5, max_detections: 50}
'''


def test_defaults_are_the_paper_configuration():
    config = DetectorConfig()
    assert config.input_size == 300
    assert config.backbone.kind == 'vgg16_rfb' and config.backbone.width == 1.0
    assert config.fusion.kind == 'concat'
    assert config.flow.kind == 'pwc'
    assert config.class_names == UCF101_24_CLASSES and len(config.class_names) == 24
    assert config.num_classes == 25
    assert config.head.variances == (0.1, 0.2)
    assert config.head.priors_per_cell() == (6, 6, 6, 6, 4, 4)


def test_build_from_yaml_dict_and_round_trip():
    config = DetectorConfig.from_dict(yaml.safe_load(YAML))
    assert config.input_size == 320
    assert config.class_names == ('run', 'jump') and config.num_classes == 3
    assert config.frames.mode == 'centred'
    assert config.flow.kind == 'dis' and config.flow.dis_preset == 'ultrafast'
    assert config.backbone.kind == 'lite' and config.backbone.width == 0.5
    assert config.fusion.kind == 'stfp'
    assert config.head.aspect_ratios == (2.0, 3.0)
    assert config.head.priors_per_cell() == (4, 6, 6, 6, 4, 4)
    assert config.postprocess.top_k == 5
    dumped = yaml.safe_dump(config.to_dict())
    assert DetectorConfig.from_dict(yaml.safe_load(dumped)) == config


@pytest.mark.parametrize('data, name', [
    ({'inputsize': 300}, 'detector.inputsize'),
    ({'fusion': {'type': 'concat'}}, 'detector.fusion.type'),
    ({'backbone': {'kind': 'lite', 'depth': 3}}, 'detector.backbone.depth'),
    ({'head': {'anchors': [1]}}, 'detector.head.anchors'),
    ({'postprocess': {'nms': 0.5}}, 'detector.postprocess.nms'),
])
def test_unknown_keys_are_rejected_with_dotted_name(data, name):
    with pytest.raises(ConfigError, match=name.replace('.', r'\.')):
        DetectorConfig.from_dict(data, 'detector')


@pytest.mark.parametrize('data, message', [
    ({'fusion': {'kind': 'max'}}, r'detector\.fusion\.kind = .max.: expected one of'),
    ({'backbone': {'kind': 'resnet'}}, r'detector\.backbone\.kind'),
    ({'backbone': {'width': 0}}, r'detector\.backbone\.width = 0\.0: expected a value > 0'),
    ({'input_size': 200}, r'detector\.input_size = 200: expected >= 268'),
    ({'input_size': 16, 'backbone': {'kind': 'lite'}}, r'detector\.input_size = 16'),
    ({'precision': 'fp8'}, r'detector\.precision'),
    ({'precision': 'fp16', 'device': 'cpu'}, r'detector\.precision = .fp16.*needs CUDA'),
    ({'device': 'gpu'}, r"detector\.device = 'gpu': expected 'auto'"),
    ({'device': 'cuda:x'}, r'detector\.device'),
    ({'class_names': []}, r'detector\.class_names'),
    ({'class_names': ['a', 'a']}, r'detector\.class_names.*unique'),
    ({'class_names': 'ab'}, r'detector\.class_names'),
    ({'input_size': 300.5}, r'detector\.input_size = 300\.5: expected int'),
    ({'channels_last': 1}, r'detector\.channels_last = 1: expected bool'),
    ({'head': {'scales': [0.1, 0.2, 0.3]}}, r'detector\.head\.scales.*7 values'),
    ({'head': {'scales': [0.2, 0.1, 0.37, 0.54, 0.71, 0.88, 1.05]}}, r'increasing'),
    ({'head': {'ratios_per_scale': [1, 1, 1]}}, r'detector\.head\.ratios_per_scale'),
    ({'head': {'ratios_per_scale': [3, 1, 1, 1, 1, 1]}}, r'expected values <= 2'),
    ({'head': {'aspect_ratios': [0.5]}}, r'detector\.head\.aspect_ratios'),
    ({'head': {'variances': [0.1]}}, r'detector\.head\.variances'),
    ({'postprocess': {'nms_iou': 0.0}}, r'detector\.postprocess\.nms_iou'),
    ({'postprocess': {'score_threshold': 1.0}}, r'detector\.postprocess\.score_threshold'),
    ({'postprocess': {'top_k': 0}}, r'detector\.postprocess\.top_k'),
    ({'fusion': 'concat'}, r'detector\.fusion = .concat.: expected a mapping'),
])
def test_invalid_values_name_parameter_and_expectation(data, message):
    with pytest.raises(ConfigError, match=message):
        DetectorConfig.from_dict(data, 'detector')


def test_valid_edge_values_are_accepted():
    assert DetectorConfig(input_size=268).input_size == 268
    assert DetectorConfig.from_dict({'input_size': 32, 'backbone': {'kind': 'lite'}})
    assert DetectorConfig(device='cuda:1', precision='fp16').device == 'cuda:1'
    assert DetectorConfig(precision='bf16', device='cpu').precision == 'bf16'
    assert HeadConfig(ratios_per_scale=(0, 0, 0, 0, 0, 0)).priors_per_cell() == (2,) * 6
    assert PostprocessConfig(score_threshold=0).score_threshold == 0.0


def test_describe_lists_every_detector_leaf():
    described = DetectorConfig.describe('detector')
    for name in ('detector.input_size', 'detector.backbone.kind', 'detector.fusion.kind',
                 'detector.head.scales', 'detector.postprocess.nms_iou', 'detector.flow.kind',
                 'detector.frames.num_frames', 'detector.precision'):
        assert name in described and described[name]['description']
    choices = described['detector.fusion.kind']['choices']
    assert choices == ('concat', 'sum', 'average', 'stfp', 'none')
