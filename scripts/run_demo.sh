#!/usr/bin/env bash
# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
#
# Run the demo in the environment made by scripts/setup_env.sh (see README).
set -eo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$REPO/scripts/activate.sh"
exec python -m stal_ros.ros.demo "$@"
