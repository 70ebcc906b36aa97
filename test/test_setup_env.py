# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""scripts/setup_env.sh: a second run is a no-op; a failing step stops with a clear message."""

import os
import subprocess

import pytest


def _run(repo, env_updates, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_updates)
    return subprocess.run(['bash', str(repo / 'scripts' / 'setup_env.sh')], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_second_run_is_a_no_op(repo):
    """The suite runs after set-up, so running it again must find every step done."""
    proc = _run(repo, {})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in ('exists', 'pinned packages already installed', 'vision_msgs is importable',
                 'install/ is up to date'):
        assert line in out, f'{line!r} not in:\n{out}'


def test_unreachable_package_index_names_the_step(repo, tmp_path):
    venv = tmp_path / 'venv'
    # No ROS sourced, no pip configuration (no local wheel folders), an index nobody serves.
    proc = _run(repo, {'STAL_VENV': str(venv), 'PIP_CONFIG_FILE': os.devnull,
                       'PIP_INDEX_URL': 'http://127.0.0.1:9/simple', 'PIP_RETRIES': '0',
                       'PIP_TIMEOUT': '2', 'PIP_FIND_LINKS': '', 'PIP_EXTRA_INDEX_URL': ''},
                drop=('ROS_DISTRO', 'VIRTUAL_ENV'))
    if 'python3.11 not found' in proc.stderr:
        pytest.fail('python3.11 is required on this machine; it is missing')
    assert proc.returncode == 1
    assert 'FAILED at step: install Python packages' in proc.stderr, proc.stderr
    assert 'package index is reachable' in proc.stderr
    # Nothing half-done is recorded as done: a re-run redoes the step.
    assert not (venv / '.stal_state' / 'pip').exists()
    assert (venv / '.stal_state' / 'venv').exists()
