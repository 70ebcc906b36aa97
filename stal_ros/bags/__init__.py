# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""rosbag2 files without ROS: read cameras, write benchmark bags, evaluate from bags.

Built on the pure-Python ``rosbags`` library, which reads and writes rosbag2 bags in both
storage formats (MCAP and sqlite3).  Nothing here imports rclpy; live evaluation over DDS
lives in ``stal_ros.ros.bag_live``.
"""
