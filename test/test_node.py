# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""``stal_node`` as a real process over real DDS, with a real (tiny, random) model."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='needs the ROS 2 environment (scripts/activate.sh)')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100  (after the ROS check)
from rcl_interfaces.msg import Parameter as ParameterMsg  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import (DurabilityPolicy, QoSProfile, ReliabilityPolicy)  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray, LabelInfo  # noqa: E402

from stal_ros.config import BackboneConfig, DetectorConfig, FlowConfig  # noqa: E402
from stal_ros.msg import ActionTubeArray  # noqa: E402
from stal_ros.net.checkpoint import save_checkpoint  # noqa: E402
from stal_ros.net.detector import build_model  # noqa: E402
from stal_ros.ros.conversions import ns_to_time, time_to_ns  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, W = 72, 96
T0 = 1_700_000_000_000_000_000
PERIOD = 40_000_000
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    """Save a tiny randomly initialised lite + DIS model with 3 classes; return its path."""
    import torch
    torch.manual_seed(0)
    cfg = DetectorConfig(backbone=BackboneConfig(kind='lite', width=0.25),
                         flow=FlowConfig(kind='dis', input_size=(64, 64)), input_size=64,
                         class_names=('wave', 'walk', 'jump'), device='cpu')
    return str(save_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.pt',
                               build_model(cfg), cfg))


def node_command(*params: str, model: str | None = None) -> list[str]:
    """Return the command line of a node process with ``name:=value`` parameters."""
    args = [sys.executable, '-m', 'stal_ros.ros.node', '--ros-args']
    if model is not None:
        args += ['-p', f'model:={model}']
    for p in ('detector.device:=cpu', 'cpu_threads:=1') + params:
        args += ['-p', p]
    return args


def frame(i: int) -> np.ndarray:
    """Return an (H, W, 3) RGB frame with a bright square moving right."""
    img = np.full((H, W, 3), 40, np.uint8)
    x = 10 + 4 * i
    img[20:50, x:x + 20] = (200, 180, 60)
    return img


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = 'cam') -> Image:
    msg = Image(header=Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id), height=H,
                width=W, encoding='rgb8', step=W * 3)
    msg.data = rgb.tobytes()
    return msg


class Peer:
    """The test's side of the link: a plain rclpy node publishing frames, collecting output."""

    def __init__(self, prefix: str = '') -> None:
        self.node = rclpy.create_node('stal_tester')
        self.image_pub = self.node.create_publisher(Image, prefix + '/image', RELIABLE)
        self.detections: list[Detection2DArray] = []
        self.tubes: list[ActionTubeArray] = []
        self.annotated: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(Detection2DArray, prefix + '/detections',
                                      self.detections.append, RELIABLE)
        self.node.create_subscription(ActionTubeArray, prefix + '/tubes', self.tubes.append,
                                      RELIABLE)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append,
                                      10)

    def spin_until(self, condition, timeout: float, proc=None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if proc is not None and proc.poll() is not None:
                return False
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return condition()

    def wait_for_node(self, proc, prefix: str = '') -> None:
        """Wait until the node's image subscription matched this reliable publisher.

        With reliability 'auto' the node may first subscribe best effort (publisher not yet
        discovered) and switch to reliable a moment later; frames sent before the switch
        would be lost.
        """
        def matched() -> bool:
            infos = self.node.get_subscriptions_info_by_topic(prefix + '/image')
            return ([i.qos_profile.reliability for i in infos] == [ReliabilityPolicy.RELIABLE]
                    and self.image_pub.get_subscription_count() == 1
                    and self.node.count_publishers(prefix + '/detections') == 1
                    and self.node.count_publishers(prefix + '/tubes') == 1)
        assert self.spin_until(matched, 30, proc), 'the node did not subscribe reliably'
        self.spin_until(lambda: False, 0.3)
        assert matched()

    def diagnostic(self, key: str) -> str | None:
        for array in reversed(self.diagnostics):
            for status in array.status:
                for kv in status.values:
                    if kv.key == key:
                        return kv.value
        return None

    def set_parameter(self, name: str, value) -> tuple[bool, str]:
        client = self.node.create_client(SetParameters, '/stal_node/set_parameters')
        assert client.wait_for_service(timeout_sec=10)
        request = SetParameters.Request(parameters=[ParameterMsg(
            name=name, value=Parameter(name, value=value).get_parameter_value())])
        future = client.call_async(request)
        self.spin_until(future.done, 10)
        result = future.result().results[0]
        return result.successful, result.reason


@pytest.fixture
def ros(ros_domain):
    rclpy.init()
    yield
    rclpy.try_shutdown()


def start(*params: str, model: str, remap: tuple[str, ...] = ()) -> subprocess.Popen:
    command = node_command(*params, model=model)
    for rule in remap:
        command += ['-r', rule]
    return subprocess.Popen(command, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(subprocess.signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.stdout.read()


@pytest.mark.ros
def test_node_publishes_detections_and_tubes_with_the_source_header(ros, model):
    tester = Peer()
    proc = start('detector.postprocess.score_threshold:=0.2', model=model)
    try:
        # The node matches the camera publisher's reliability ('auto').
        tester.wait_for_node(proc)
        # LabelInfo reaches a subscriber that comes late (transient local).
        labels: list[LabelInfo] = []
        tester.node.create_subscription(LabelInfo, '/label_info', labels.append, LATCHED)
        assert tester.spin_until(lambda: labels, 10)
        assert [(c.class_id, c.class_name) for c in labels[0].class_map] == \
            [(0, 'wave'), (1, 'walk'), (2, 'jump')]

        stamps = []
        for i in range(6):
            stamp = T0 + i * PERIOD
            stamps.append(stamp)
            tester.image_pub.publish(image_msg(frame(i), stamp))
            # K = 3 causal clips, padded: one result per frame from the first on.
            want = i + 1
            assert tester.spin_until(lambda: len(tester.tubes) >= want and
                                     len(tester.detections) >= want, 20, proc), \
                f'no result for frame {i}'
        assert [time_to_ns(m.header.stamp) for m in tester.detections] == stamps
        assert [m.header for m in tester.detections] == [m.header for m in tester.tubes]
        assert all(m.header.frame_id == 'cam' for m in tester.detections)
        total = 0
        for dets, tubes in zip(tester.detections, tester.tubes):
            tube_ids = {t.id for t in tubes.tubes}
            det_ids = [d.id for d in dets.detections]
            assert set(det_ids) <= tube_ids and len(set(det_ids)) == len(det_ids)
            for d in dets.detections:
                assert d.results[0].hypothesis.class_id in ('0', '1', '2')
                assert d.results[0].hypothesis.score > 0.2
                assert 0 <= d.bbox.center.position.x <= W
            total += len(det_ids)
        assert total > 0, 'the random model at threshold 0.2 should find boxes'

        # image_annotated is rendered only while someone subscribes.
        assert tester.spin_until(lambda: tester.diagnostic('annotated images published'), 5)
        assert tester.diagnostic('annotated images published') == '0'
        # The model's clip: K = 3 causal frames, so results are not late.
        assert tester.diagnostic('frames per clip') == '3'
        assert tester.diagnostic('frames late') == '0'
        tester.node.create_subscription(Image, '/image_annotated', tester.annotated.append,
                                        RELIABLE)
        time.sleep(0.5)
        tester.spin_until(lambda: False, 0.5)
        tester.image_pub.publish(image_msg(frame(6), T0 + 6 * PERIOD))
        assert tester.spin_until(lambda: tester.annotated, 10, proc)
        got = tester.annotated[0]
        assert (got.height, got.width, got.encoding) == (H, W, 'rgb8')
        assert time_to_ns(got.header.stamp) == T0 + 6 * PERIOD

        # A bad live change is rejected with a reason; a good one takes effect: a threshold
        # nothing passes gives empty arrays, still one per frame, with the source header.
        ok, reason = tester.set_parameter('tubes.top_k', 3)
        assert not ok and 'read-only' in reason
        ok, reason = tester.set_parameter('detector.postprocess.score_threshold', 1.5)
        assert not ok and reason
        ok, _ = tester.set_parameter('detector.postprocess.score_threshold', 0.99)
        assert ok
        before = len(tester.detections)
        tester.image_pub.publish(image_msg(frame(7), T0 + 7 * PERIOD))
        assert tester.spin_until(lambda: len(tester.detections) > before and
                                 len(tester.tubes) > before, 10, proc)
        assert time_to_ns(tester.detections[-1].header.stamp) == T0 + 7 * PERIOD
        assert tester.detections[-1].detections == []
        # Tubes still bridge the gap (tubes.jump_gap), but none was seen in this frame.
        assert all(time_to_ns(t.last_stamp) < T0 + 7 * PERIOD for t in tester.tubes[-1].tubes)
    finally:
        out = stop(proc)
        tester.node.destroy_node()
    assert proc.returncode == 0, out


@pytest.mark.ros
def test_bad_frames_are_survived_and_a_burst_leaves_no_backlog(ros, model, tmp_path):
    # Started exactly as launch/stal.launch.py starts it (CPU profile, Fast DDS profile).
    from stal_ros.ros.launch_spec import stal_node_spec
    extra = tmp_path / 'test.yaml'
    extra.write_text('/**:\n  ros__parameters:\n    cpu_threads: 1\n')
    spec = stal_node_spec(image='/image', profile='cpu', params_files=[str(extra)],
                          model=model)
    tester = Peer()
    proc = subprocess.Popen(spec.command(), cwd=REPO, env=spec.environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        tester.wait_for_node(proc)
        for i in range(3):
            tester.image_pub.publish(image_msg(frame(i), T0 + i * PERIOD))
            time.sleep(0.04)    # a 25 Hz camera
        assert tester.spin_until(lambda: tester.detections, 20, proc)
        # Garbage: truncated data, an unknown encoding, a zero size.
        bad = [image_msg(frame(3), T0 + 3 * PERIOD), image_msg(frame(3), T0 + 3 * PERIOD),
               Image(header=Header(stamp=ns_to_time(T0 + 3 * PERIOD)))]
        bad[0].data = bad[0].data[:100]
        bad[1].encoding = '32FC1'
        for msg in bad:
            tester.image_pub.publish(msg)
        tester.image_pub.publish(image_msg(frame(4), T0 + 4 * PERIOD))
        assert tester.spin_until(
            lambda: time_to_ns(tester.detections[-1].header.stamp) == T0 + 4 * PERIOD, 20, proc)
        assert tester.spin_until(lambda: tester.diagnostic('bad frames') == '3', 5, proc)

        # A burst far faster than the model: the node keeps only the newest clip, so the
        # last frame is answered promptly and most of the burst is dropped, not queued.
        received = len(tester.detections)
        burst = 40
        start_ns = T0 + 10 * PERIOD
        for i in range(burst):
            tester.image_pub.publish(image_msg(frame(i % 12), start_ns + i * PERIOD))
        sent = time.monotonic()
        last = start_ns + (burst - 1) * PERIOD
        assert tester.spin_until(
            lambda: time_to_ns(tester.detections[-1].header.stamp) == last, 10, proc)
        answered = time.monotonic() - sent
        assert len(tester.detections) - received < burst - 2
        assert tester.spin_until(lambda: int(tester.diagnostic('dropped frames') or 0) > 0, 5)
        assert answered < 5.0
    finally:
        out = stop(proc)
        tester.node.destroy_node()
    assert proc.returncode == 0, out


@pytest.mark.ros
@pytest.mark.parametrize('params,words', [
    (('tubes.iou_threshold:=1.5',), ['tubes.iou_threshold', '1.5', '<= 1.0']),
    (('model:=no_such_model',), ['model', 'no_such_model', 'models/no_such_model.pt']),
    (('qos.reliability:=sometimes',), ['qos.reliability', 'sometimes', 'auto']),
])
def test_a_bad_parameter_exits_non_zero_naming_it(ros_domain, model, params, words):
    proc = subprocess.run(node_command(*params, model=None if 'model' in params[0]
                                       else model), cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def change_state(peer: Peer, transition: int) -> bool:
    from lifecycle_msgs.srv import ChangeState
    client = peer.node.create_client(ChangeState, '/stal_node/change_state')
    assert client.wait_for_service(timeout_sec=10)
    request = ChangeState.Request()
    request.transition.id = transition
    future = client.call_async(request)
    assert peer.spin_until(future.done, 30)
    return future.result().success


def node_state(peer: Peer) -> str:
    from lifecycle_msgs.srv import GetState
    client = peer.node.create_client(GetState, '/stal_node/get_state')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(GetState.Request())
    assert peer.spin_until(future.done, 10)
    return future.result().current_state.label


@pytest.mark.ros
def test_lifecycle_and_two_independent_cameras(ros, model):
    from lifecycle_msgs.msg import Transition
    from std_srvs.srv import SetBool, Trigger
    peer = Peer('/front')
    rear_pub = peer.node.create_publisher(Image, '/rear/image', RELIABLE)
    rear: list[Detection2DArray] = []
    peer.node.create_subscription(Detection2DArray, '/rear/detections', rear.append, RELIABLE)
    rear_tubes: list[ActionTubeArray] = []
    peer.node.create_subscription(ActionTubeArray, '/rear/tubes', rear_tubes.append, RELIABLE)
    # Tubes reported from their first frame: three frames make one clip.
    proc = start('autostart:=false', 'cameras:=[front, rear]',
                 'detector.postprocess.score_threshold:=0.2', 'tubes.min_publish_length:=1',
                 model=model)
    try:
        assert node_state(peer) == 'unconfigured'
        assert peer.node.count_subscribers('/front/image') == 0
        assert change_state(peer, Transition.TRANSITION_CONFIGURE)
        assert node_state(peer) == 'inactive'
        assert peer.node.count_subscribers('/front/image') == 0
        assert change_state(peer, Transition.TRANSITION_ACTIVATE)
        peer.wait_for_node(proc, '/front')
        assert peer.spin_until(lambda: rear_pub.get_subscription_count() == 1 and
                               peer.node.count_publishers('/rear/detections') == 1, 10)
        peer.spin_until(lambda: False, 0.3)

        small = np.ascontiguousarray(np.stack([frame(i) for i in range(3)])[:, :48, :64])
        for i in range(3):
            peer.image_pub.publish(image_msg(frame(i), T0 + i * PERIOD, 'front_cam'))
            msg = image_msg(small[i], T0 + 5 + i * PERIOD, 'rear_cam')
            msg.height, msg.width, msg.step = 48, 64, 64 * 3
            rear_pub.publish(msg)
            time.sleep(0.04)
        assert peer.spin_until(lambda: peer.detections and rear and peer.tubes and rear_tubes,
                               20, proc)
        assert peer.detections[0].header.frame_id == 'front_cam'
        # Padded clips: any of the three frames may give the first result (the node skips
        # clips the model is too busy for), each under its source frame's stamp.
        assert time_to_ns(peer.detections[0].header.stamp) in {T0 + i * PERIOD
                                                               for i in range(3)}
        assert rear[0].header.frame_id == 'rear_cam'
        assert time_to_ns(rear[0].header.stamp) in {T0 + 5 + i * PERIOD for i in range(3)}
        front_ids = {t.id for t in peer.tubes[0].tubes}
        rear_ids = {t.id for t in rear_tubes[0].tubes}
        assert front_ids and all(i.startswith('front/') for i in front_ids)
        assert rear_ids and all(i.startswith('rear/') for i in rear_ids)
        assert all(d.bbox.center.position.x <= 64 for d in rear[0].detections)

        client = peer.node.create_client(Trigger, '/stal_node/reset')
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(Trigger.Request())
        assert peer.spin_until(future.done, 10) and future.result().success

        # ~/enable false: frames are ignored until enabled again.
        enable = peer.node.create_client(SetBool, '/stal_node/enable')
        assert enable.wait_for_service(timeout_sec=10)
        future = enable.call_async(SetBool.Request(data=False))
        assert peer.spin_until(future.done, 10) and future.result().success
        count = len(peer.detections)
        for i in range(3, 6):
            peer.image_pub.publish(image_msg(frame(i), T0 + i * PERIOD, 'front_cam'))
            time.sleep(0.04)
        peer.spin_until(lambda: False, 1.0)
        assert len(peer.detections) == count
        future = enable.call_async(SetBool.Request(data=True))
        assert peer.spin_until(future.done, 10) and future.result().success

        # Deactivate: the node stops listening and publishing.
        assert change_state(peer, Transition.TRANSITION_DEACTIVATE)
        assert node_state(peer) == 'inactive'
        assert peer.spin_until(lambda: peer.node.count_subscribers('/front/image') == 0, 5)
        count = len(peer.detections)
        for i in range(6, 9):
            peer.image_pub.publish(image_msg(frame(i), T0 + i * PERIOD, 'front_cam'))
        peer.spin_until(lambda: False, 1.0)
        assert len(peer.detections) == count
        assert change_state(peer, Transition.TRANSITION_CLEANUP)
        assert node_state(peer) == 'unconfigured'
    finally:
        out = stop(proc)
        peer.node.destroy_node()
    assert proc.returncode == 0, out


@pytest.mark.ros
def test_bgr8_padded_and_png_cameras_give_the_detections_of_rgb8(ros, model):
    import cv2
    from sensor_msgs.msg import CompressedImage
    peer = Peer('/a')
    pubs = {'b': peer.node.create_publisher(Image, '/b/image', RELIABLE),
            'c': peer.node.create_publisher(CompressedImage, '/c/image/compressed', RELIABLE)}
    got: dict[str, list[Detection2DArray]] = {'a': peer.detections, 'b': [], 'c': []}
    for name in ('b', 'c'):
        peer.node.create_subscription(Detection2DArray, f'/{name}/detections',
                                      got[name].append, RELIABLE)
    # Camera c's topic name ends in /compressed: the node subscribes CompressedImage there.
    proc = start('cameras:=[a, b, c]', 'detector.postprocess.score_threshold:=0.2',
                 'tubes.min_publish_length:=1', model=model,
                 remap=('c/image:=c/image/compressed',))
    try:
        peer.wait_for_node(proc, '/a')
        assert peer.spin_until(lambda: all(p.get_subscription_count() == 1
                                           for p in pubs.values()), 10, proc)
        peer.spin_until(lambda: False, 0.5)

        def stamps(name: str) -> set[int]:
            return {time_to_ns(m.header.stamp) for m in got[name]}

        # In lockstep: the next frame only after every camera's result for this one, so no
        # camera's clip is replaced by a newer one (latest-frame policy) while the model is
        # busy, and all three cameras see the same clips.
        for i in range(3):
            rgb = frame(i)
            stamp = T0 + i * PERIOD
            peer.image_pub.publish(image_msg(rgb, stamp))
            bgr = np.zeros((H, W * 3 + 8), np.uint8)      # 8 bytes of row padding
            bgr[:, :W * 3] = rgb[:, :, ::-1].reshape(H, -1)
            pubs['b'].publish(Image(header=Header(stamp=ns_to_time(stamp)), height=H, width=W,
                                    encoding='bgr8', step=W * 3 + 8, data=bgr.tobytes()))
            ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
            pubs['c'].publish(CompressedImage(header=Header(stamp=ns_to_time(stamp)),
                                              format='png', data=png.tobytes()))
            assert peer.spin_until(lambda: all(stamp in stamps(n) for n in got), 20, proc)

        def summary(msg: Detection2DArray):
            return sorted((d.results[0].hypothesis.class_id,
                           round(d.results[0].hypothesis.score, 3),
                           round(d.bbox.center.position.x, 1), round(d.bbox.size_x, 1))
                          for d in msg.detections)
        results = {n: {time_to_ns(m.header.stamp): summary(m) for m in got[n]} for n in got}
        assert any(results['a'].values()), 'expected boxes from the random model'
        assert results['b'] == results['a']
        assert results['c'] == results['a']
    finally:
        out = stop(proc)
        peer.node.destroy_node()
    assert proc.returncode == 0, out


def test_launch_spec_describes_the_node_as_the_launch_files_start_it(tmp_path):
    from stal_ros.ros.launch_spec import stal_node_spec
    spec = stal_node_spec(namespace='robot', image='/cam/image_raw', profile='gpu',
                          params_files=['/tmp/extra.yaml'], model='lite_dis', device='cuda:1')
    cmd = spec.command(['stal_node'])
    files = [cmd[i + 1] for i, a in enumerate(cmd) if a == '--params-file']
    relative = [os.path.relpath(f, REPO) for f in files[:2]]
    assert relative == ['config/stal_ros.yaml', 'config/gpu.yaml']
    assert files[2] == '/tmp/extra.yaml' and all(os.path.isfile(f) for f in files[:2])
    assert cmd[:5] == ['stal_node', '--ros-args', '-r', '__node:=stal_node', '-r']
    assert '__ns:=/robot' in cmd and 'image:=/cam/image_raw' in cmd
    assert 'model:=lite_dis' in cmd and 'detector.device:=cuda:1' in cmd
    assert spec.launch_parameters()[-1] == {'use_sim_time': False, 'model': 'lite_dis',
                                            'detector.device': 'cuda:1'}
    kwargs = spec.launch_node_kwargs()
    assert (kwargs['package'], kwargs['executable'], kwargs['namespace']) == \
        ('stal_ros', 'stal_node', 'robot')
    assert kwargs['parameters'] == spec.launch_parameters()
    assert kwargs['additional_env'] == spec.env
    assert ('image', '/cam/image_raw') in kwargs['remappings']
    from stal_ros.ros.launch_spec import launch_bool
    assert [launch_bool(t) for t in ('True', ' on', 'yes', '1', 'false', '0', '')] == \
        [True, True, True, True, False, False, False]
    profile = spec.env['FASTRTPS_DEFAULT_PROFILES_FILE']
    assert os.path.isfile(profile) and spec.env['FASTDDS_DEFAULT_PROFILES_FILE'] == profile
    multi = stal_node_spec(cameras=['front', 'rear'], camera_topics=['/f/img', ''],
                           compressed=True, profile='')
    assert multi.remappings == (('front/image/compressed', '/f/img'),)
    assert multi.parameters['cameras'] == ['front', 'rear'] and multi.parameters['compressed']
    with pytest.raises(ValueError, match='one topic per camera'):
        stal_node_spec(cameras=['a', 'b'], camera_topics=['/x'])
    with pytest.raises(ValueError, match="profile 'tpu'"):
        stal_node_spec(profile='tpu')


@pytest.mark.parametrize('name', ['stal.launch.py', 'multi_camera.launch.py'])
def test_launch_files_build_their_description(name):
    pytest.importorskip('launch_ros', reason='launch_ros is not installable from pip wheels; '
                        'this runs on a robot with ROS 2')
    import importlib.util
    path = os.path.join(REPO, 'launch', name)
    spec = importlib.util.spec_from_file_location('launch_file', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) > 3


@pytest.mark.ros
def test_shipped_fastdds_profile_lets_best_effort_carry_large_frames(ros_domain, tmp_path):
    """768x576 bgr8 frames at 10 Hz, best effort: all arrive when the publisher has it."""
    from stal_ros.ros.launch_spec import fastdds_env
    script = tmp_path / 'pub.py'
    script.write_text(
        'import time, rclpy\n'
        'from rclpy.qos import QoSProfile, ReliabilityPolicy\n'
        'from sensor_msgs.msg import Image\n'
        'rclpy.init()\n'
        "node = rclpy.create_node('big_camera')\n"
        "pub = node.create_publisher(Image, '/big', QoSProfile(\n"
        '    depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))\n'
        'deadline = time.monotonic() + 20\n'
        'while pub.get_subscription_count() == 0 and time.monotonic() < deadline:\n'
        '    time.sleep(0.05)\n'
        'time.sleep(0.5)\n'
        'data = bytes(range(256)) * (768 * 576 * 3 // 256)\n'
        'for i in range(20):\n'
        "    pub.publish(Image(height=576, width=768, encoding='bgr8', step=768 * 3,\n"
        '                      data=data))\n'
        '    time.sleep(0.1)\n'
        'time.sleep(0.5)\n')
    rclpy.init()
    node = rclpy.create_node('big_listener')
    got = []
    node.create_subscription(Image, '/big', got.append,
                             QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    env = {**os.environ, **fastdds_env()}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        for _ in range(10):
            rclpy.spin_once(node, timeout_sec=0.05)
        out = proc.communicate(timeout=10)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    assert 'Error' not in out, out
    assert len(got) >= 19, f'{len(got)} of 20 large frames arrived'


@pytest.mark.ros
@pytest.mark.parametrize('compressed', [False, True])
def test_image_publisher_plays_a_folder_as_a_camera(ros, tmp_path, compressed):
    import cv2
    from sensor_msgs.msg import CompressedImage
    from stal_ros.ros.images import compressed_to_rgb, image_to_rgb
    for i in range(3):
        cv2.imwrite(str(tmp_path / f'{i:03d}.png'), frame(i)[:, :, ::-1])
    node = rclpy.create_node('image_listener')
    got = []
    topic, kind = ('/cam/image/compressed', CompressedImage) if compressed else \
        ('/cam/image', Image)
    node.create_subscription(kind, topic, got.append, RELIABLE)
    command = [sys.executable, '-m', 'stal_ros.ros.image_publisher', str(tmp_path),
               '--topic', '/cam/image', '--rate', '20', '--count', '4', '--loop', '--wait',
               '20', '--frame-id', 'cam0'] + (['--compressed', 'png'] if compressed else [])
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(got) < 4 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        out = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
    assert proc.returncode == 0, out
    assert len(got) == 4, out
    stamps = [time_to_ns(m.header.stamp) for m in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert abs(stamps[0] - time.time_ns()) < 60e9      # real (wall-clock) stamps
    assert all(m.header.frame_id == 'cam0' for m in got)
    decode = compressed_to_rgb if compressed else image_to_rgb
    # The folder is played in order and loops: frames 0, 1, 2, 0.
    for msg, i in zip(got, [0, 1, 2, 0]):
        np.testing.assert_array_equal(decode(msg), frame(i))


def test_readme_parameter_table_is_the_generated_one(repo):
    from stal_ros.ros.params import markdown_table
    text = (repo / 'README.md').read_text()
    start = text.index('<!-- parameters: generated by python -m stal_ros.ros.params -->\n')
    end = text.index('<!-- end of parameters -->')
    assert text[start:end].split('\n', 1)[1] == markdown_table(), \
        'README parameter table is stale: python -m stal_ros.ros.params'
    assert '`tubes.iou_threshold` | `0.1` | yes' in markdown_table()
    assert '`tubes.top_k` | `10` | no' in markdown_table()


def test_shipped_parameter_file_is_the_nodes_and_names_only_its_parameters(repo):
    """config/stal_ros.yaml holds exactly what the node declares: no key is silently ignored."""
    from stal_ros.ros.params import parameter_file, parameter_rows
    shipped = (repo / 'config' / 'stal_ros.yaml').read_text()
    assert shipped == parameter_file(), \
        'stale config/stal_ros.yaml: python -m stal_ros.ros.params --yaml > config/stal_ros.yaml'
    import yaml

    def leaves(data, prefix=''):
        out = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out.update(leaves(value, f'{prefix}{key}.'))
            else:
                out[f'{prefix}{key}'] = value
        return out
    given = leaves(yaml.safe_load(shipped)['/**']['ros__parameters'])
    declared = {name: default for name, default, _, _ in parameter_rows()}
    assert set(given) == {n for n, d in declared.items() if d != ()}
    assert 'detector.backbone.kind' not in given and 'detector.postprocess.nms_iou' in given
    assert all(len(line) <= 99 for line in shipped.splitlines())
