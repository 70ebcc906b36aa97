# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The typed config machinery: validation messages, dict round trips, descriptions."""

import dataclasses

import pytest

from stal_ros.config import (ConfigBase, ConfigError, DetectorConfig, StalConfig, TrimConfig,
                             TubeConfig)


def test_defaults_round_trip_through_plain_dicts():
    for cls in (TubeConfig, TrimConfig, DetectorConfig):
        cfg = cls()
        data = cfg.to_dict()
        assert cls.from_dict(data) == cfg
        assert all(not isinstance(v, tuple) for v in data.values())


@pytest.mark.parametrize('field, value, message', [
    ('iou_threshold', 1.5, 'tubes.iou_threshold = 1.5: expected a value <= 1.0'),
    ('iou_threshold', float('nan'), 'tubes.iou_threshold = nan: expected a finite number'),
    ('jump_gap', -1, 'tubes.jump_gap = -1: expected a value >= 0'),
    ('jump_gap', 2.5, 'tubes.jump_gap = 2.5: expected int, got float'),
    ('jump_gap', True, 'tubes.jump_gap = True: expected int, got bool'),
    ('edge_cost', 'iou', "tubes.edge_cost = 'iou': expected one of ['score', 'scrSim', "
                         "'scrMinusSim']"),
    ('top_k', '10', "tubes.top_k = '10': expected int, got str"),
])
def test_bad_values_name_parameter_value_and_expectation(field, value, message):
    # Built from a tree (file, ROS parameters), the name is the dotted path in that tree.
    with pytest.raises(ConfigError) as info:
        StalConfig.from_dict({'tubes': {field: value}})
    assert str(info.value) == message
    assert info.value.path == ('tubes', field)
    # Built directly, a section does not know where it sits: the class is named.
    with pytest.raises(ConfigError) as info:
        TubeConfig(**{field: value})
    assert str(info.value) == message.replace('tubes.', 'TubeConfig.', 1)


def test_names_come_from_where_a_section_sits_in_the_tree():
    """The same section nested elsewhere (e.g. per camera) gets that path, nothing hard-coded."""

    @dataclasses.dataclass(frozen=True)
    class Camera(ConfigBase):
        tubes: TubeConfig = dataclasses.field(default_factory=TubeConfig,
                                              metadata={'description': 'per camera'})

    @dataclasses.dataclass(frozen=True)
    class Robot(ConfigBase):
        front: Camera = dataclasses.field(default_factory=Camera,
                                          metadata={'description': 'front camera'})

    with pytest.raises(ConfigError, match=r'^cameras\.front\.tubes\.jump_gap = -1: '):
        Robot.from_dict({'front': {'tubes': {'jump_gap': -1}}}, 'cameras')
    assert 'cameras.front.tubes.jump_gap' in Robot.describe('cameras')
    assert Robot().flatten('cameras')['cameras.front.tubes.jump_gap'] == TubeConfig().jump_gap
    cross = {'detector': {'backbone': {'kind': 'vgg16_rfb'}, 'input_size': 100}}
    with pytest.raises(ConfigError, match=r'^detector\.input_size = 100: expected >= 268'):
        StalConfig.from_dict(cross)


def test_yaml_like_input_is_normalised():
    """YAML gives ints for floats and lists for tuples; both are accepted and converted."""
    cfg = TubeConfig.from_dict({'iou_threshold': 0, 'score_threshold': 1})
    assert cfg.iou_threshold == 0.0 and isinstance(cfg.iou_threshold, float)
    det = DetectorConfig.from_dict({'flow': {'input_size': [128, 192]}})
    assert det.flow.input_size == (128, 192)


def test_unknown_keys_are_named_with_their_section():
    with pytest.raises(ConfigError, match=r"\['tubes.jump_gapp'\]"):
        StalConfig.from_dict({'tubes': {'jump_gapp': 3}})
    with pytest.raises(ConfigError, match=r"\['detector.flow.knd'\]"):
        DetectorConfig.from_dict({'flow': {'knd': 'dis'}}, 'detector')
    with pytest.raises(ConfigError, match=r"\['flow.knd'\]"):
        DetectorConfig.from_dict({'flow': {'knd': 'dis'}})
    with pytest.raises(ConfigError, match='detector.flow = 3: expected a mapping'):
        StalConfig.from_dict({'detector': {'flow': 3}})


def test_configs_are_frozen():
    cfg = TubeConfig()
    with pytest.raises(AttributeError):
        cfg.jump_gap = 5


def test_describe_lists_every_leaf_with_description_and_default():
    desc = StalConfig.describe()
    assert desc['detector.flow.search_range']['default'] == 4
    assert desc['detector.flow.search_range']['le'] == 8
    assert desc['detector.fusion.kind']['choices'] == ('concat', 'sum', 'average', 'stfp',
                                                       'none')
    assert all(entry['description'] for entry in desc.values()), \
        [k for k, e in desc.items() if not e['description']]
    tubes = TubeConfig.describe('tubes')
    assert set(tubes) == {f'tubes.{k}' for k in TubeConfig().to_dict()}
    assert set(TubeConfig.describe()) == set(TubeConfig().to_dict())
