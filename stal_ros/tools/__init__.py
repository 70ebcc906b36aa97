# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Command-line tools that measure the library: benchmarks and model statistics."""
