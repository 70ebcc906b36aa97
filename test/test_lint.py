# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""flake8 and pep257 in the ROS 2 (ament_flake8 / ament_pep257) style over all Python files."""

import subprocess
import sys

import pytest

TARGETS = ['stal_ros', 'test', 'setup.py', 'launch', 'scripts']


@pytest.mark.linter
def test_flake8(repo):
    """Flake8 with the ament plugins: 99 columns, single quotes, google import order."""
    proc = subprocess.run([sys.executable, '-m', 'flake8', *TARGETS], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f'flake8 found problems:\n{proc.stdout}{proc.stderr}'


@pytest.mark.linter
def test_pep257(repo):
    """Docstring conventions as ament_pep257 checks them."""
    proc = subprocess.run([sys.executable, '-m', 'pydocstyle', 'stal_ros', 'launch'],
                          cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, f'pydocstyle found problems:\n{proc.stdout}{proc.stderr}'


@pytest.mark.linter
def test_flake8_config_is_strict(repo, tmp_path):
    """The linter really runs with our settings: a file breaking them is reported."""
    bad = tmp_path / 'bad.py'
    bad.write_text('x = "double quoted"\n' + 'y = 1  # ' + 'z' * 100 + '\n')
    proc = subprocess.run([sys.executable, '-m', 'flake8', '--config', str(repo / 'setup.cfg'),
                           str(bad)], capture_output=True, text=True)
    assert 'Q000' in proc.stdout and 'E501' in proc.stdout, proc.stdout
