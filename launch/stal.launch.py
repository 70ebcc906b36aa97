# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Launch stal_node for one camera (optionally RViz).

    ros2 launch stal_ros stal.launch.py image:=/camera/image_raw model:=lite_dis device:=cpu
    ros2 launch stal_ros stal.launch.py namespace:=robot1 profile:=gpu rviz:=true

What is started (executable, parameter files, parameters, remappings, the Fast DDS profile)
comes from ``stal_ros.ros.launch_spec.stal_node_spec``, which the tests also use.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from stal_ros.ros.launch_spec import launch_bool, share_dir, stal_node_spec

ARGUMENTS = (
    ('namespace', '', 'Namespace of the node and its topics.'),
    ('image', '', "Camera topic ('' keeps the relative topic image)."),
    ('compressed', 'false', 'Subscribe sensor_msgs/CompressedImage on <image>.'),
    ('profile', 'cpu', "Parameter profile config/<profile>.yaml: 'cpu', 'gpu' or '' (none)."),
    ('params_file', '', 'A parameter file loaded after the profile.'),
    ('model', '', "Checkpoint path or model name in models/ ('' keeps the profile's)."),
    ('device', '', "'auto', 'cpu', 'cuda' or 'cuda:N' ('' keeps the profile's)."),
    ('use_sim_time', 'false', 'Use /clock (bag replay).'),
    ('rviz', 'false', 'Also start RViz with config/stal.rviz.'),
)


def _node(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    spec = stal_node_spec(namespace=value['namespace'], image=value['image'],
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
             arguments=['-d', str(share_dir() / 'config' / 'stal.rviz')],
             condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
