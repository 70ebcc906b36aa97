# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The ROS edge: the only modules that import rclpy or message types.

Message conversion, the demo processes and (later) the node and its parameters live here;
everything outside ``stal_ros.ros`` is ROS-free (``test/test_layering.py``).
"""
