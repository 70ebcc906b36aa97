# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Launch one stal_node for several cameras, batched in one forward pass.

    ros2 launch stal_ros multi_camera.launch.py cameras:=front,rear \
        camera_topics:=/front_cam/image_raw,/rear_cam/image_raw

Subscribes ``<name>/image`` (remapped to the given topics) and publishes ``<name>/detections``,
``<name>/tubes``, ``<name>/image_annotated`` and ``<name>/label_info``.  The node description
comes from ``stal_ros.ros.launch_spec.stal_node_spec``, which the tests also use.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from stal_ros.ros.launch_spec import launch_bool, share_dir, stal_node_spec

ARGUMENTS = (
    ('cameras', 'front,rear', 'Comma-separated camera names.'),
    ('camera_topics', '', "Comma-separated image topics, one per camera ('' keeps "
     '<name>/image).'),
    ('namespace', '', 'Namespace of the node and its topics.'),
    ('compressed', 'false', 'Subscribe sensor_msgs/CompressedImage.'),
    ('profile', 'cpu', "Parameter profile config/<profile>.yaml: 'cpu', 'gpu' or ''."),
    ('params_file', '', 'A parameter file loaded after the profile.'),
    ('model', '', "Checkpoint path or model name in models/ ('' keeps the profile's)."),
    ('device', '', "'auto', 'cpu', 'cuda' or 'cuda:N' ('' keeps the profile's)."),
    ('use_sim_time', 'false', 'Use /clock (bag replay).'),
    ('rviz', 'false', 'Also start RViz with config/multi_camera.rviz.'),
)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(',') if part.strip()]


def _node(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    spec = stal_node_spec(namespace=value['namespace'], cameras=_split(value['cameras']),
                          camera_topics=_split(value['camera_topics']),
                          profile=value['profile'], params_files=[value['params_file']],
                          model=value['model'], device=value['device'],
                          use_sim_time=launch_bool(value['use_sim_time']),
                          compressed=launch_bool(value['compressed']))
    return [Node(**spec.launch_node_kwargs(), output='screen')]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the node is described by ``stal_node_spec``."""
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, default, text in ARGUMENTS),
        OpaqueFunction(function=_node),
        Node(package='rviz2', executable='rviz2', output='screen',
             arguments=['-d', str(share_dir() / 'config' / 'multi_camera.rviz')],
             condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
