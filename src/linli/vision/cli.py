"""`linli vision`: detect on files, streams or registered cameras; store a still frame to calibrate on."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from linli.core import media, pii
from linli.core.auth.service import Principal
from linli.core.errors import Invalid, LinliError
from linli.core.timeutil import utcnow
from linli.db import make_engine, make_session_factory, unit_of_work
from linli.settings import get_settings
from linli.vision import runner, service, stills
from linli.vision.calibration import Calibration
from linli.vision.source import is_stream

vision_app = typer.Typer(help="High-altitude throw detection (高空抛物检测)", no_args_is_help=True)


def _factory() -> sessionmaker[Session]:
    settings = get_settings()
    pii.configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    media.configure(root=settings.media_dir, max_bytes=settings.media_max_bytes)
    return make_session_factory(make_engine(settings.database_url))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"错误 / error: {message}", err=True)
    return typer.Exit(2)


def load_calibration(path: Path) -> Calibration:
    """A Calibration from a JSON file (Calibration.to_json form, or a benchmark truth with "calibration")."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(f"无法读取标定文件 {path}：{exc}", field="calibration") from None
    if isinstance(data, dict) and isinstance(data.get("calibration"), dict):
        data = data["calibration"]
    return Calibration.from_json(data)


def _is_media(source: str) -> bool:
    return is_stream(source) or "/" in source or Path(source).suffix != "" or Path(source).exists()


def resolve(
    session: Session, source: str, *, serial: str | None, calibration: Calibration | None
) -> runner.Stream:
    """What to watch for one --source: a file or URL (with --camera / --calibration) or a camera serial."""
    if not _is_media(source):  # a registered camera: stream and calibration from the database
        serial, source = source, ""
    camera = None
    if serial:
        _, camera = service.find_by_serial(session, serial=serial)
        if camera is None:
            raise Invalid(
                f"{serial} 尚未加入高空抛物检测（在控制台“设备 › 高空抛物检测”中添加）", field="camera"
            )
        if not source:
            if not camera.enabled:
                raise Invalid(f"{serial} 的抛物检测已停用", field="camera")
            if not camera.stream_url:
                raise Invalid(f"{serial} 没有登记视频流地址", field="camera")
            source = camera.stream_url
    reference = None
    if calibration is None:
        if camera is None or camera.calibration is None:
            raise Invalid(
                f"{serial or source} 尚未标定：请在控制台标定，或用 --calibration 给出标定文件",
                field="calibration",
            )
        calibration = Calibration.from_json(camera.calibration)
        reference = runner.reference_image(camera)  # the still that calibration was drawn on
    return runner.Stream(
        source=source,
        calibration=calibration,
        camera_id=camera.id if camera else None,
        serial=serial or "",
        reference=reference,
    )


@vision_app.command("run")
def run(
    source: Annotated[list[str], typer.Option(help="video file, rtsp://… URL or camera serial (repeatable)")],
    camera: Annotated[
        list[str] | None,
        typer.Option(help="register serial of the camera a file/URL shows (repeatable, in --source order)"),
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="Calibration JSON file (else the camera's stored calibration)")
    ] = None,
) -> None:
    """Detect falling objects on files and streams, each in its own thread, until files end or Ctrl-C.

    With a registered camera each detection becomes a throw.detected event (key frame and clip stored);
    a file or URL without --camera only prints its detections as JSON lines.
    """
    cameras = camera or []
    if cameras and len(cameras) != len(source):
        raise _fail("give one --camera per --source, in the same order (or none)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    factory = _factory()
    try:
        given = load_calibration(calibration) if calibration else None
        with unit_of_work(factory, write=False) as session:
            streams = [
                resolve(session, src, serial=cameras[i] if cameras else None, calibration=given)
                for i, src in enumerate(source)
            ]
    except LinliError as exc:
        raise _fail(f"{exc.field or ''} {exc.message}".strip()) from None
    from linli.core.bus import make_bus

    stored = any(s.camera_id is not None for s in streams)
    bus = make_bus(get_settings()) if stored else None
    writer = runner.Writer(factory if stored else None, bus, out=typer.echo)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        tallies = runner.run(streams, writer=writer, stop=stop)
    finally:
        if bus is not None:
            bus.close()
    for tally in tallies:
        typer.echo(json.dumps(tally.summary(), ensure_ascii=False), err=True)
    if writer.failed:
        raise _fail(f"{writer.failed} item(s) could not be stored; see the log")


@vision_app.command("calibrate-frame")
def calibrate_frame(
    serial: Annotated[str, typer.Argument(help="register serial of the camera")],
    from_: Annotated[
        str, typer.Option("--from", help="picture, video file or rtsp://… URL to take the still from")
    ],
) -> None:
    """Store a still frame of a camera for the console's calibration editor (watching it if not yet)."""
    factory = _factory()
    try:
        jpeg, width, height = stills.grab(from_)
        with unit_of_work(factory) as session:
            device, camera = service.find_by_serial(session, serial=serial)
            if camera is None:
                camera = service.configure(session, Principal.system(), device_id=device.id)
            service.store_reference_frame(
                session,
                Principal.system(),
                camera=camera,
                jpeg=jpeg,
                width=width,
                height=height,
                now=utcnow(),
            )
            answer = {
                "camera": camera.id,
                "serial": serial,
                "frame": camera.reference_frame,
                "size": [width, height],
            }
    except LinliError as exc:
        raise _fail(f"{exc.field or ''} {exc.message}".strip()) from None
    typer.echo(json.dumps(answer, ensure_ascii=False))
