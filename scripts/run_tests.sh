#!/usr/bin/env bash
# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
#
# Run the whole test suite (linters, unit, DDS integration, colcon build) in the environment
# made by scripts/setup_env.sh. Extra arguments go to pytest.
set -eo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$REPO/scripts/activate.sh"
cd "$REPO"
exec python -m pytest -q -rs "$@"
