# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Shared pytest fixtures."""

import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> pathlib.Path:
    """Return the repository root."""
    return REPO


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """Give each DDS test its own ROS domain so concurrent runs never see each other."""
    domain = 100 + (os.getpid() % 100)
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.delenv('ROS_LOCALHOST_ONLY', raising=False)
    return domain


def copy_sources(dest: pathlib.Path) -> pathlib.Path:
    """Copy the repository's tracked and unignored files (a clean checkout) into ``dest``."""
    out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    for rel in out.splitlines():
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest
