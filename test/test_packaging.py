# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""setup.py builds a wheel of the ROS-free library and its command-line tools."""

import subprocess
import sys
import zipfile

from conftest import copy_sources
import pytest


@pytest.mark.slow
def test_wheel_holds_the_library_and_console_scripts(tmp_path):
    src = copy_sources(tmp_path / 'src')  # setuptools writes build/ beside setup.py
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                           '--no-build-isolation', '-q', '-w', str(tmp_path), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    wheels = list(tmp_path.glob('stal_ros-*.whl'))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as whl:
        names = set(whl.namelist())
        entry_points = next(whl.read(n).decode() for n in names
                            if n.endswith('entry_points.txt'))
    for module in ('stal_ros/config.py', 'stal_ros/tubes/linker.py', 'stal_ros/net/detector.py',
                   'stal_ros/metrics/frame_ap.py'):
        assert module in names, module
    assert not any(n.startswith('stal_ros/msg/') for n in names)
    assert 'stal-bench-tubes = stal_ros.tools.bench_tubes:main' in entry_points
    assert 'stal-model-stats = stal_ros.tools.model_stats:main' in entry_points
