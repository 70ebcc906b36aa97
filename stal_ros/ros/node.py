# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""``stal_node``: cameras in, detections and action tubes out (a thin lifecycle node).

    stal_node --ros-args -p model:=lite_dis -r image:=/camera/image_raw
    ros2 run stal_ros stal_node --ros-args -p cameras:='[front, rear]'

Convert -> ``Pipeline`` -> convert -> publish.  The executor thread only decodes images and
pushes them into the ``Pipeline`` (latest-frame policy); one worker thread runs
``Pipeline.step`` (the model, batched over cameras) and publishes.  Lifecycle: configure loads
the model and creates the publishers, activate subscribes and starts the worker, deactivate
stops both and forgets frames and tubes, cleanup frees the model (and CUDA memory).  With
``autostart`` (default) the node configures and activates itself.

Per camera (``cameras`` empty: no prefix; ``[front]``: ``front/...``), all relative:
  in   ``image`` (sensor_msgs/Image) or ``image/compressed`` (sensor_msgs/CompressedImage)
  out  ``detections`` (vision_msgs/Detection2DArray, ``Detection2D.id`` = tube id),
       ``tubes`` (stal_ros/ActionTubeArray), both for every processed frame, even empty, with
       the source image's header; ``image_annotated`` (only while subscribed);
       ``label_info`` (vision_msgs/LabelInfo, transient local).
Node: ``/diagnostics``, services ``~/enable`` (std_srvs/SetBool), ``~/reset`` (Trigger).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from typing import Any, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import SetBool, Trigger
from vision_msgs.msg import Detection2DArray, LabelInfo, VisionClass

from stal_ros.config import ConfigError, PostprocessConfig
from stal_ros.frames import latency_frames
from stal_ros.msg import ActionTubeArray
from stal_ros.pipeline import CameraResult, Pipeline, published_tubes
from stal_ros.render import render
from stal_ros.ros.conversions import time_to_ns, tubes_to_detections_msg, tubes_to_msg
from stal_ros.ros.diagnostics import CameraMonitor
from stal_ros.ros.images import compressed_to_rgb, image_to_rgb, rgb_to_image
from stal_ros.ros.params import declare_settings, resolve_model, RUNTIME_PARAMETERS, updated

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         history=HistoryPolicy.KEEP_LAST)
WARN_EVERY_S = 5.0


class _Camera:
    """One camera's ROS side: topics, publishers, subscription, monitor."""

    def __init__(self, name: str, prefix: str) -> None:
        self.name = name
        self.prefix = prefix
        self.topic = ''
        self.compressed = False
        self.subscription = None
        self.reliability: ReliabilityPolicy | None = None
        self.matched = False          # reliability chosen from a known publisher
        self.publishers: dict[str, Any] = {}
        self.monitor: CameraMonitor | None = None
        self.seen = False             # a frame has arrived


class StalNode(LifecycleNode):
    """Spatio-temporal action localisation over one or more cameras (see module doc)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('stal_node', **kwargs)
        self.settings = declare_settings(self)                 # raises ConfigError
        self.model_path = resolve_model(self.settings.node.model)
        names = self.settings.node.cameras
        self._cameras = ([_Camera(n, f'{n}/') for n in names] if names
                         else [_Camera(self.get_name(), '')])
        self._detector = None           # stal_ros.net.detector.Detector once configured
        self._pipeline: Pipeline | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._enabled = True
        self._timers: list = []
        self._label_pubs: list = []
        self._diag_pub = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(SetBool, '~/enable', self._on_enable)
        self.create_service(Trigger, '~/reset', self._on_reset)

    # ---------------------------------------------------------------- lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model, create the publishers, publish LabelInfo."""
        if self.settings.node.cpu_threads:
            import torch
            torch.set_num_threads(self.settings.node.cpu_threads)
        # torch is imported here, not at start-up: a bad parameter fails within a second.
        from stal_ros.net.checkpoint import CheckpointError, load_checkpoint
        from stal_ros.net.detector import build_detector
        try:
            trained = load_checkpoint(self.model_path).config
            config = self.settings.detector_config(trained)
            self._detector = build_detector(config, self.model_path)
        except (CheckpointError, ConfigError, ValueError) as exc:
            self.get_logger().error(f'cannot load the model (model = '
                                    f'{self.settings.node.model!r}, {self.model_path}): {exc}')
            self._detector = None
            return TransitionCallbackReturn.FAILURE
        names = self._detector.class_names
        labels = LabelInfo(class_map=[VisionClass(class_id=i, class_name=n)
                                      for i, n in enumerate(names)],
                           threshold=float(self.settings.tubes.score_threshold))
        for cam in self._cameras:
            pubs = cam.publishers
            pubs['detections'] = self.create_lifecycle_publisher(
                Detection2DArray, cam.prefix + 'detections', OUTPUT_QOS)
            pubs['tubes'] = self.create_lifecycle_publisher(
                ActionTubeArray, cam.prefix + 'tubes', OUTPUT_QOS)
            pubs['image_annotated'] = self.create_lifecycle_publisher(
                Image, cam.prefix + 'image_annotated', QoSProfile(
                    depth=1, reliability=ReliabilityPolicy.RELIABLE))
            label_pub = self.create_publisher(LabelInfo, cam.prefix + 'label_info',
                                              LATCHED_QOS)
            labels.header.stamp = self.get_clock().now().to_msg()
            label_pub.publish(labels)
            self._label_pubs.append(label_pub)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        det = self._detector
        self.get_logger().info(
            f'model {self.model_path} ({det.config.backbone.kind} backbone, '
            f'{det.config.flow.kind} flow, input {det.config.input_size}, {len(names)} classes: '
            f'{", ".join(names)}) on {det.device} ({det.precision}); cameras: '
            f'{[c.name for c in self._cameras]}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the cameras and start the inference worker."""
        self._pipeline = Pipeline(self._detector, self.settings.tubes,
                                  [c.name for c in self._cameras])
        for cam in self._cameras:
            cam.monitor = cam.monitor or CameraMonitor(cam.name, '')
            self._subscribe(cam)
            cam.monitor.topic = cam.topic
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name='stal_inference', daemon=True)
        self._worker.start()
        self._timers = [
            self.create_timer(self.settings.node.output.diagnostics_period,
                              self._publish_diagnostics),
            self.create_timer(1.0, self._match_publishers_qos)]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop subscriptions and the worker; forget frames and tubes."""
        self._stop_processing()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and free the model (and CUDA memory)."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything from any state."""
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Stop processing and free the model, whatever the lifecycle state."""
        self._stop_processing()
        self._release()

    def _stop_processing(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []
        for cam in self._cameras:
            if cam.subscription is not None:
                self.destroy_subscription(cam.subscription)
                cam.subscription = None
        self._pipeline = None

    def _release(self) -> None:
        for cam in self._cameras:
            for pub in cam.publishers.values():
                self.destroy_lifecycle_publisher(pub)
            cam.publishers = {}
        for pub in self._label_pubs + ([self._diag_pub] if self._diag_pub else []):
            self.destroy_publisher(pub)
        self._label_pubs, self._diag_pub = [], None
        device = None if self._detector is None else self._detector.device
        self._detector = None
        gc.collect()
        if device is not None and device.type == 'cuda':
            import torch
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------------ input side
    def _subscribe(self, cam: _Camera) -> None:
        """(Re)create the camera's subscription with the QoS the parameters ask for."""
        node = self.settings.node
        base = self.resolve_topic_name(cam.prefix + 'image')
        cam.compressed = node.compressed or base.endswith('/compressed')
        cam.topic = (self.resolve_topic_name(cam.prefix + 'image/compressed')
                     if node.compressed and not base.endswith('/compressed') else base)
        if node.qos.reliability == 'auto':
            cam.reliability, cam.matched = self._publisher_reliability(cam.topic)
        else:
            cam.matched = True
            cam.reliability = (ReliabilityPolicy.RELIABLE if node.qos.reliability == 'reliable'
                               else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(depth=node.qos.depth, history=HistoryPolicy.KEEP_LAST,
                         reliability=cam.reliability, durability=DurabilityPolicy.VOLATILE)
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda info, cam=cam: self._on_incompatible_qos(cam, info))
        if cam.subscription is not None:
            self.destroy_subscription(cam.subscription)
        cam.subscription = self.create_subscription(
            CompressedImage if cam.compressed else Image, cam.topic,
            lambda msg, cam=cam: self._on_image(cam, msg), qos, event_callbacks=events)
        self.get_logger().info(
            f'camera {cam.name}: subscribed to {cam.topic} '
            f'({"CompressedImage" if cam.compressed else "Image"}, '
            f'{cam.reliability.name.lower()}'
            f'{"" if cam.matched else " until a publisher appears"}, depth {qos.depth})')

    def _publisher_reliability(self, topic: str) -> tuple[ReliabilityPolicy, bool]:
        """Reliable only when every known publisher is; best effort when none is known."""
        infos = self.get_publishers_info_by_topic(topic)
        if not infos:
            return ReliabilityPolicy.BEST_EFFORT, False
        reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        return (ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT), True

    def _match_publishers_qos(self) -> None:
        """With reliability 'auto', match the first publisher that appears after start-up."""
        for cam in self._cameras:
            if cam.matched or cam.subscription is None:
                continue
            reliability, known = self._publisher_reliability(cam.topic)
            if not known:
                continue
            cam.matched = True
            if reliability != cam.reliability:
                self._subscribe(cam)

    def _on_incompatible_qos(self, cam: _Camera, info: Any) -> None:
        pubs = ', '.join(f'{i.node_namespace.rstrip("/")}/{i.node_name} '
                         f'({i.qos_profile.reliability.name.lower()}, '
                         f'{i.qos_profile.durability.name.lower()})'
                         for i in self.get_publishers_info_by_topic(cam.topic)) or 'unknown'
        self.get_logger().warning(
            f'camera {cam.name}: a publisher of {cam.topic} has an incompatible QoS (policy '
            f'{info.last_policy_kind}); this subscription is {cam.reliability.name.lower()}, '
            f'volatile; publishers: {pubs}. Set qos.reliability to match.')

    def _on_image(self, cam: _Camera, msg: Image | CompressedImage) -> None:
        monitor, pipeline = cam.monitor, self._pipeline
        monitor.received()
        if not cam.seen:
            cam.seen = True
            self.get_logger().info(f'camera {cam.name}: first frame on {cam.topic}')
        if not self._enabled or pipeline is None:
            return
        stamp = time_to_ns(msg.header.stamp)
        try:
            rgb = compressed_to_rgb(msg) if cam.compressed else image_to_rgb(msg)
            event = pipeline.push(cam.name, rgb, stamp or self.get_clock().now().nanoseconds,
                                  meta=msg.header)
        except (ValueError, TypeError) as exc:
            monitor.bad_frame(str(exc))
            self.get_logger().warning(f'camera {cam.name}: bad frame on {cam.topic} skipped '
                                      f'({monitor.bad} so far): {exc}',
                                      throttle_duration_sec=WARN_EVERY_S)
            return
        if event:
            self.get_logger().warning(event, throttle_duration_sec=WARN_EVERY_S)

    # ----------------------------------------------------------------------- output side
    def _work(self) -> None:
        """Run the inference thread: step the pipeline, publish, repeat until stopped."""
        pipeline = self._pipeline
        while not self._stop.is_set():
            if not pipeline.wait(0.1):
                continue
            started = time.monotonic()
            try:
                results = pipeline.step()
            except (RuntimeError, ValueError) as exc:   # e.g. CUDA out of memory
                self.get_logger().error(f'inference failed, frames skipped: {exc}',
                                        throttle_duration_sec=WARN_EVERY_S)
                continue
            for result in results:
                self._publish(result)
            rate = self.settings.node.processing_rate
            if rate > 0:
                self._stop.wait(max(0.0, 1.0 / rate - (time.monotonic() - started)))

    def _publish(self, result: CameraResult) -> None:
        cam = next(c for c in self._cameras if c.name == result.camera)
        header = result.meta
        names = self._pipeline.class_names if self._pipeline else ()
        active, tubes = published_tubes(result, self.settings.node.output.max_history)
        pubs = cam.publishers
        pubs['detections'].publish(tubes_to_detections_msg(header, active, result.stamp_ns))
        pubs['tubes'].publish(tubes_to_msg(header, tubes, names))
        annotated = pubs['image_annotated']
        if annotated.get_subscription_count() > 0:
            image = render(result.frame, active, names, result.stamp_ns,
                           self.settings.node.output.trail)
            annotated.publish(rgb_to_image(image, header))
            cam.monitor.annotated += 1
        end_to_end = (self.get_clock().now().nanoseconds - time_to_ns(header.stamp)) * 1e-9
        cam.monitor.processed(result.inference_s, end_to_end)

    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None or self._detector is None:
            return
        device = self._detector.device
        frames = self._detector.config.frames
        extra = {'device': str(device), 'model': str(self.model_path),
                 'enabled': str(self._enabled).lower(),
                 'frames per clip': str(frames.num_frames),
                 'frames late': str(latency_frames(frames))}
        if device.type == 'cuda':
            import torch
            extra['GPU memory allocated (MiB)'] = \
                f'{torch.cuda.memory_allocated(device) / 2 ** 20:.0f}'
        pipeline = self._pipeline
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for cam in self._cameras:
            stats = pipeline.stats(cam.name) if pipeline else None
            msg.status.append(cam.monitor.status(
                f'{self.get_name()}: camera {cam.name}', str(device), stats, extra))
        self._diag_pub.publish(msg)

    # ------------------------------------------------------------- parameters, services
    def _on_set_parameters(self, params: Sequence[Any]) -> SetParametersResult:
        """Validate live changes through the config; apply the runtime-safe ones."""
        changes = {p.name: p.value for p in params if p.name in RUNTIME_PARAMETERS}
        if not changes:     # use_sim_time and the like; read-only ones rclpy refuses itself
            return SetParametersResult(successful=True)
        try:
            new = updated(self.settings, changes)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.settings = new
        if self._pipeline is not None:
            self._pipeline.update_thresholds(
                PostprocessConfig.from_dict(new.detector['postprocess'],
                                            'detector.postprocess'), new.tubes)
        elif self._detector is not None:
            for key, value in new.detector['postprocess'].items():
                setattr(self._detector.postprocess, key, value)
        return SetParametersResult(successful=True)

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> Any:
        self._enabled = bool(request.data)
        response.success = True
        response.message = 'processing ' + ('enabled' if self._enabled else 'disabled')
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        if self._pipeline is None:
            response.success, response.message = False, 'not active: nothing to reset'
            return response
        self._pipeline.reset()
        response.success, response.message = True, 'frames and tubes of every camera reset'
        self.get_logger().info(response.message)
        return response


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node; exit 2 on a bad parameter, 1 when the model cannot be loaded."""
    rclpy.init(args=argv)
    logger = rclpy.logging.get_logger('stal_node')
    try:
        try:
            node = StalNode()
        except ConfigError as exc:
            logger.fatal(f'bad parameter: {exc}')
            return 2
        if node.settings.node.autostart:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                logger.fatal('configure failed (see above); exiting')
                node.destroy_node()
                return 1
            node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            node.stop()
            node.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
