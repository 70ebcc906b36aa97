# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Launch the demo on a robot: a video or image folder as a live camera into stal_node.

    ros2 launch stal_ros demo.launch.py source:=demo_out/stream rate:=10 loop:=true rviz:=true
    ros2 launch stal_ros demo.launch.py source:=/dev/video0 model:=/path/to/model.pt

``scripts/run_demo.sh`` (or ``python3 -m stal_ros.ros.demo``) writes ``demo_out/stream``
(clips of the synthetic motion benchmark). The image publisher plays the source on
``/image``; the node publishes ``/detections``, ``/tubes`` and ``/image_annotated`` (what
``config/stal.rviz`` shows). What is started comes from
``stal_ros.ros.demo_support.demo_specs``, which ``run_demo.sh`` also uses (in the namespace
``/stal_demo`` there).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from stal_ros.ros.demo_support import demo_specs
from stal_ros.ros.launch_spec import launch_bool, share_dir

ARGUMENTS = (
    ('source', 'demo_out/stream', 'Video file, image folder or /dev/videoN to play.'),
    ('rate', '10', 'Frames per second.'),
    ('loop', 'true', 'Play the source again at its end.'),
    ('model', 'lite_dis', 'Checkpoint path or model name in models/.'),
    ('threshold', '0.2', 'Box and tube score threshold of the node.'),
    ('rviz', 'false', 'Also start RViz with config/stal.rviz.'),
)


def _nodes(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    node, publisher = demo_specs(value['source'], rate=float(value['rate']),
                                 model=value['model'], threshold=float(value['threshold']),
                                 loop=launch_bool(value['loop']), namespace='')
    return [Node(**node.launch_node_kwargs(), output='screen'),
            Node(**publisher.node.launch_node_kwargs(), arguments=list(publisher.arguments),
                 output='screen')]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the processes are described by ``demo_specs``."""
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, default, text in ARGUMENTS),
        OpaqueFunction(function=_nodes),
        Node(package='rviz2', executable='rviz2', output='screen',
             arguments=['-d', str(share_dir() / 'config' / 'stal.rviz')],
             condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
