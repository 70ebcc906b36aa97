# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Launch the end-to-end smoke demo: talker (linker + publishers) and listener (prints tubes).

    ros2 launch stal_ros demo.launch.py frames:=100

Needs launch_ros (part of every ROS 2 desktop install). Where launch is not installed (the
pip-wheel environment), ``python -m stal_ros.ros.demo`` runs the same two processes.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    """Two processes exchanging stal_ros/ActionTubeArray and vision_msgs/Detection2DArray."""
    frames = LaunchConfiguration('frames')
    return LaunchDescription([
        DeclareLaunchArgument('frames', default_value='100',
                              description='Frames of the scripted scene to publish.'),
        Node(package='stal_ros', executable='stal_demo_listener', output='screen',
             arguments=['--frames', frames, '--timeout', '60']),
        Node(package='stal_ros', executable='stal_demo_talker', output='screen',
             arguments=['--frames', frames]),
    ])
