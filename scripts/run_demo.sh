#!/usr/bin/env bash
# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
#
# Run the demo in the environment made by scripts/setup_env.sh (see README): clips of the
# synthetic motion benchmark played as a live camera into stal_node; writes ./demo_out.
#   scripts/run_demo.sh [--videos 4] [--frames 40] [--rate 10] [--out DIR] [--model PATH]
set -eo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$REPO/scripts/activate.sh"
# This checkout's sources first (the generated messages come from install/).
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec python -m stal_ros.ros.demo "$@"
