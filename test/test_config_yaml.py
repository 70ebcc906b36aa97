# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""YAML front end of the typed config: parameter files written and read back, validated."""

import pytest
import yaml

from stal_ros.config import ConfigError, StalConfig, TubeConfig
from stal_ros.config_yaml import dump_ros_params, load_config


def _leaves(data, prefix=''):
    out = {}
    for key, value in data.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(_leaves(value, name + '.'))
        else:
            out[name] = value
    return out


def test_parameter_file_keys_equal_dataclass_fields():
    data = yaml.safe_load(dump_ros_params())
    leaves = _leaves(data['/**']['ros__parameters'])
    described = StalConfig.describe()
    assert set(leaves) == set(described)
    for name, value in leaves.items():
        default = described[name]['default']
        assert value == (list(default) if isinstance(default, tuple) else default), name
    assert all(len(line) <= 99 for line in dump_ros_params().splitlines())


def test_load_round_trip_and_changed_values(tmp_path):
    text = dump_ros_params().replace(f'jump_gap: {TubeConfig().jump_gap}\n', 'jump_gap: 5\n')
    path = tmp_path / 'p.yaml'
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.tubes.jump_gap == 5
    assert cfg.detector == StalConfig().detector


def test_bad_value_in_file_names_file_parameter_and_expectation(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text(dump_ros_params().replace("kind: 'concat'", "kind: 'mul'"))
    with pytest.raises(ConfigError, match=r"bad.yaml: detector.fusion.kind = 'mul': expected "
                                          r"one of \['concat'"):
        load_config(path)
    path.write_text('detector: [1, 2]\n')
    with pytest.raises(ConfigError, match='detector = \\[1, 2\\]: expected a mapping'):
        load_config(path)
    path.write_text('{unclosed: [\n')
    with pytest.raises(ConfigError, match='cannot read a YAML parameter file'):
        load_config(path)
