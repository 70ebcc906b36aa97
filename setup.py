# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""pip packaging of the ROS-free stal_ros library and its command-line tools.

On a robot, colcon builds this repository through CMakeLists.txt (package.xml declares
ament_cmake), which also generates the messages. This file serves machines without ROS, such as
a GPU training server: ``pip install .`` installs the detector, tubes, metrics and the
command-line tools; the ROS node and message conversions need a ROS 2 environment.
"""

import glob

from setuptools import find_packages, setup

setup(
    name='stal_ros',
    version='0.1.0',
    description='Real-time spatio-temporal action localization (action tubes) for ROS 2',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['stal_ros', 'stal_ros.*']),
    # The .msg definitions the bag tools need where no ROS 2 installs them (stal_ros.bags.types).
    data_files=[('share/stal_ros/bag_types/stal_ros', sorted(glob.glob('msg/*.msg'))),
                ('share/stal_ros/bag_types/vision_msgs',
                 sorted(glob.glob('scripts/env/vision_msgs/msg/*.msg')))],
    install_requires=[
        'numpy>=1.24',
        'opencv-python-headless>=4.8',
        'PyYAML>=6',
        'torch>=2.1',
        'torchvision>=0.16',
    ],
    extras_require={
        'bags': ['rosbags>=0.11'],
        'train': ['tqdm>=4.60', 'matplotlib>=3.5', 'tensorboard>=2.10'],
        'test': ['pytest', 'hypothesis'],
    },
    entry_points={
        'console_scripts': [
            'stal-bench-tubes = stal_ros.tools.bench_tubes:main',
            'stal-bench-stream = stal_ros.tools.bench_stream:main',
            'stal-model-stats = stal_ros.tools.model_stats:main',
            'stal-make-benchmark = stal_ros.data.cli:make_main',
            'stal-show-benchmark = stal_ros.data.cli:show_main',
            'stal-train = stal_ros.train:main',
            'stal-evaluate = stal_ros.evaluate:main',
            'stal-bag = stal_ros.bags.cli:main',
            'stal-bag-live = stal_ros.ros.bag_live:main',
            'stal_node = stal_ros.ros.node:main',
            'stal_image_publisher = stal_ros.ros.image_publisher:main',
        ],
    },
)
