# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""A robot user's flow: clone into <ws>/src, colcon build, source install/setup.bash, import."""

import os
import shutil
import subprocess

from conftest import copy_sources
import pytest


@pytest.mark.ros
@pytest.mark.slow
def test_colcon_build_and_import_from_install_space(repo, tmp_path):
    if shutil.which('colcon') is None:
        pytest.fail('colcon is not on PATH: run scripts/setup_env.sh and source '
                    'scripts/activate.sh')
    copy_sources(tmp_path / 'ws' / 'src' / 'stal_ros')
    ws = tmp_path / 'ws'
    build = subprocess.run(['colcon', 'build', '--event-handlers', 'console_direct-'],
                           cwd=ws, capture_output=True, text=True)
    assert build.returncode == 0, f'colcon build failed:\n{build.stdout}\n{build.stderr}'
    assert 'Summary: 1 package finished' in build.stdout, build.stdout

    # Import from a neutral folder so only the install space can provide the package.
    check = tmp_path / 'check_install.py'
    check.write_text(
        'import stal_ros, stal_ros.config\n'
        'from stal_ros.msg import ActionTube, ActionTubeArray\n'
        "m = ActionTubeArray(tubes=[ActionTube(id='cam0/7', class_name='Biking')])\n"
        'print(stal_ros.__file__)\n'
        'print(stal_ros.config.__file__)\n'
        'print(m.tubes[0].id, m.tubes[0].class_name, ActionTube.STATE_FINISHED)\n')
    script = f'source install/setup.bash && cd / && python {check}'
    env = dict(os.environ)
    # Forget the developer overlay: the test must see only the fresh workspace.
    for var in ('COLCON_PREFIX_PATH', 'PYTHONPATH'):
        env.pop(var, None)
    env['AMENT_PREFIX_PATH'] = ':'.join(
        p for p in env.get('AMENT_PREFIX_PATH', '').split(':')
        if p and not p.startswith(str(repo / 'install')))
    run = subprocess.run(['bash', '-c', script], cwd=ws, capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    install = str(ws / 'install' / 'stal_ros')
    assert lines[0].startswith(install), lines
    assert lines[1].startswith(install), lines
    assert lines[2] == 'cam0/7 Biking 1'
    assert os.access(ws / 'install' / 'stal_ros' / 'lib' / 'stal_ros' / 'stal_image_publisher',
                     os.X_OK)
