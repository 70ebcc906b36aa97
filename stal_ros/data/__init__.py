# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Data for training and evaluation: the synthetic motion benchmark, its files and pictures.

``motion`` generates videos whose action classes are defined only by motion, with exact optical
flow and action tubes; ``io`` writes and reads splits of them (``.npz`` + ``index.json``);
``show`` draws a grid of annotated frames; ``cli`` holds the console commands
``stal-make-benchmark`` and ``stal-show-benchmark``.  ROS-free (numpy + OpenCV).
"""

from stal_ros.data.io import read_split, write_split
from stal_ros.data.motion import (ActorTube, CLASS_NAMES, ground_truth, make_split, make_video,
                                  MotionConfig, MotionVideo, split_seeds, TIME_REVERSED)
from stal_ros.data.show import grid_image

__all__ = ['ActorTube', 'CLASS_NAMES', 'MotionConfig', 'MotionVideo', 'TIME_REVERSED',
           'grid_image', 'ground_truth', 'make_split', 'make_video', 'read_split',
           'split_seeds', 'write_split']
