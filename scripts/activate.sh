# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
#
# Source this (bash) after scripts/setup_env.sh: activates the venv, makes the pip-wheel ROS 2
# (if that is what the venv holds) visible to ament, and overlays this repository's install/.
#   source scripts/activate.sh
_stal_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_stal_venv=${STAL_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/stal_ros/venv}
if [[ ! -f "$_stal_venv/bin/activate" || ! -f "$_stal_repo/install/setup.bash" ]]; then
  echo "stal_ros: run $_stal_repo/scripts/setup_env.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_stal_venv/bin/activate"
if [[ -z "${ROS_DISTRO:-}" ]]; then
  # Pip-wheel ROS: the venv is the ament prefix of the underlay (rclpy, msgs, vision_msgs).
  export AMENT_PREFIX_PATH=$_stal_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
fi
# shellcheck disable=SC1091
source "$_stal_repo/install/setup.bash"
unset _stal_repo _stal_venv
