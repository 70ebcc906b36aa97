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
    assert 'stal-bench-stream = stal_ros.tools.bench_stream:main' in entry_points
    assert 'stal-model-stats = stal_ros.tools.model_stats:main' in entry_points
    assert 'stal-bag = stal_ros.bags.cli:main' in entry_points
    # The bag tools' message definitions travel with the wheel (no ROS 2 needed to read bags).
    assert any(n.endswith('share/stal_ros/bag_types/stal_ros/ActionTubeArray.msg')
               for n in names)
    assert any(n.endswith('share/stal_ros/bag_types/vision_msgs/Detection2DArray.msg')
               for n in names)


def test_every_command_is_installed_by_colcon_too():
    """Each console script of setup.py has its scripts/bin wrapper (CMake installs it to bin/)."""
    import pathlib
    import re
    repo = pathlib.Path(__file__).resolve().parents[1]
    entries = re.findall(r"'([\w-]+) = ([\w.]+):(\w+)'", (repo / 'setup.py').read_text())
    assert len(entries) >= 10
    for name, module, function in entries:
        wrapper = repo / 'scripts' / ('bin' if name.startswith('stal-') else '') / name
        assert wrapper.is_file(), f'{name}: no {wrapper}'
        text = wrapper.read_text()
        assert f'from {module} import {function}' in text, name
        assert wrapper.stat().st_mode & 0o111, f'{wrapper} is not executable'
    assert 'scripts/bin/stal-*' in (repo / 'CMakeLists.txt').read_text()
