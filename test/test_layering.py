# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""ROS only at the edge: no core module imports ROS, directly or through another module."""

import ast
import pathlib

# The folder rule: only modules under stal_ros/ros/ (the ROS edge: message conversion, the
# node, the demo) may import ROS (rclpy, message packages), directly or through another module.
EDGE = 'stal_ros.ros'


ROS_ROOTS = {'rclpy', 'rosidl_runtime_py', 'std_msgs', 'sensor_msgs', 'vision_msgs',
             'builtin_interfaces', 'visualization_msgs', 'diagnostic_msgs', 'geometry_msgs',
             'launch', 'launch_ros', 'cv_bridge', 'rosbag2_py', 'message_filters'}


def _is_edge(module: str) -> bool:
    return module == EDGE or module.startswith(EDGE + '.')


def _module_name(repo: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(repo).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _imports(path: pathlib.Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the containing package
                package = name.split('.')
                if path.name != '__init__.py':
                    package = package[:-1]
                base = package[:len(package) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ''
            found.add(mod)
            found.update(f'{mod}.{alias.name}' for alias in node.names)
    return found


def _graph(repo: pathlib.Path) -> dict[str, set[str]]:
    graph = {}
    for path in sorted((repo / 'stal_ros').rglob('*.py')):
        name = _module_name(repo, path)
        graph[name] = _imports(path, name)
    return graph


def _ros_paths(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """For each core module that reaches ROS, the import chain that does it."""
    bad = {}
    for start in graph:
        if _is_edge(start):
            continue
        stack = [(start, [start])]
        seen = set()
        while stack:
            mod, chain = stack.pop()
            if mod in seen:
                continue
            seen.add(mod)
            for imp in graph.get(mod, ()):
                root = imp.split('.')[0]
                if root in ROS_ROOTS or imp == 'stal_ros.msg' or imp.startswith('stal_ros.msg.'):
                    bad[start] = chain + [imp]
                    break
                if imp in graph and not _is_edge(imp):
                    stack.append((imp, chain + [imp]))
                elif _is_edge(imp):
                    bad[start] = chain + [imp]
                    break
            if start in bad:
                break
    return bad


def test_core_modules_do_not_import_ros(repo):
    graph = _graph(repo)
    assert len(graph) > 3, 'the package walk found too few modules'
    bad = _ros_paths(graph)
    assert not bad, 'core modules importing ROS: ' + '; '.join(
        ' -> '.join(chain) for chain in bad.values())


def test_layering_check_catches_a_ros_import(tmp_path):
    """The checker itself fails on a core module reaching rclpy through another module."""
    pkg = tmp_path / 'stal_ros'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'tubes.py').write_text('from stal_ros import helper\n')
    (pkg / 'helper.py').write_text('import rclpy.node\n')
    (pkg / 'ros').mkdir()
    (pkg / 'ros' / '__init__.py').write_text('')
    (pkg / 'ros' / 'node.py').write_text('import rclpy\n')
    (pkg / 'render.py').write_text('from stal_ros.ros import node\n')
    bad = _ros_paths(_graph(tmp_path))
    assert set(bad) == {'stal_ros.tubes', 'stal_ros.helper', 'stal_ros.render'}
    assert bad['stal_ros.tubes'][-1] == 'rclpy.node'
