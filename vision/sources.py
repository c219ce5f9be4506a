"""Frames from images, folders, video files and RTSP/HTTP streams, one at a time (generators, never a list).

>>> for frame in open_source("site-cam.mp4").frames():        # doctest: +SKIP
...     frame.image, frame.index, frame.time_s

A stream that stops is reopened with exponential backoff (:class:`Reconnect`); frame
indices carry on across reconnects. When the attempts run out, :class:`StreamDropped` is
raised with the number of frames read, after every frame read so far has been yielded, so
a consumer that stores as it goes keeps them. Images are RGB uint8 (h, w, 3).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.vision.errors import SourceError, StreamDropped

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv", ".ts", ".mjpeg", ".mjpg")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray              # (h, w, 3) uint8 RGB
    index: int                     # 0.. within the source (continues across stream reconnects)
    time_s: float                  # seconds since the source's start (video time, or wall time for streams)
    ref: str                       # file path or URL
    captured_at: dt.datetime | None = None


@dataclass(frozen=True)
class Reconnect:
    """How a dropped stream is retried: delays base, base*factor, ... capped at max_delay_s."""

    attempts: int = 5              # (int >= 0) reconnect attempts before giving up
    base_delay_s: float = 0.5      # (s) first wait
    factor: float = 2.0            # (>= 1) growth of the wait per attempt
    max_delay_s: float = 8.0       # (s) longest wait
    open_timeout_s: float = 10.0   # (s) how long one open may take

    def delays(self) -> list[float]:
        return [min(self.max_delay_s, self.base_delay_s * self.factor ** i) for i in range(self.attempts)]


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8; SourceError naming the file when it is missing or cannot be decoded."""
    import cv2

    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SourceError(N_("{path}: cannot read ({detail})"), path=path, detail=exc.strerror) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(N_("{path}: not a readable image (corrupt, truncated or not an image format)"), path=path)
    return np.ascontiguousarray(image[..., ::-1])


class Source:
    """A source of frames: ``kind`` is image | folder | video | stream."""

    def __init__(self, ref: str, kind: str, *, reconnect: Reconnect = Reconnect(), stride: int = 1,
                 sleep: Callable[[float], None] = time.sleep):
        self.ref = ref
        self.kind = kind
        self.reconnect = reconnect
        self.stride = max(1, int(stride))
        self._sleep = sleep
        self.frames_read = 0
        self.reconnects = 0
        self.fps: float | None = None

    def frames(self) -> Iterator[Frame]:
        if self.kind == "image":
            yield self._count(Frame(read_image(self.ref), 0, 0.0, self.ref))
        elif self.kind == "folder":
            yield from self._folder()
        elif self.kind == "video":
            yield from self._video()
        else:
            yield from self._stream()

    def _count(self, frame: Frame) -> Frame:
        self.frames_read += 1
        return frame

    def _folder(self) -> Iterator[Frame]:
        files = sorted(p for p in Path(self.ref).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(N_("{ref}: folder holds no images ({suffixes})"), ref=self.ref,
                              suffixes=", ".join(IMAGE_SUFFIXES))
        for i, f in enumerate(files):
            yield self._count(Frame(read_image(f), i, 0.0, str(f)))

    def _open(self, what: str):
        import cv2

        cap = cv2.VideoCapture(self.ref, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.reconnect.open_timeout_s * 1000),
                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.reconnect.open_timeout_s * 1000)])
        if not cap.isOpened():
            cap.release()
            return None
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else self.fps
        return cap

    def _video(self) -> Iterator[Frame]:
        if not Path(self.ref).exists():
            raise SourceError(N_("{ref}: no such video file"), ref=self.ref)
        cap = self._open("video")
        if cap is None:
            raise SourceError(N_("{ref}: cannot open as a video (unreadable, corrupt or unsupported codec)"),
                              ref=self.ref)
        fps = self.fps or 25.0
        try:
            ok, image = cap.read()
            if not ok:
                raise SourceError(N_("{ref}: video opens but no frame can be decoded (corrupt or empty)"),
                                  ref=self.ref)
            index = 0
            while ok:
                if index % self.stride == 0:
                    yield self._count(Frame(np.ascontiguousarray(image[..., ::-1]), index, index / fps, self.ref))
                index += 1
                ok, image = cap.read()
        finally:
            cap.release()

    def _stream(self) -> Iterator[Frame]:
        started = time.monotonic()
        index = 0
        delays = self.reconnect.delays()
        attempt = 0
        cap = self._open("stream")
        if cap is None:
            raise SourceError(N_("{ref}: cannot open the stream (no answer, or not a video stream)"), ref=self.ref)
        try:
            while True:
                ok, image = cap.read()
                if ok:
                    attempt = 0                      # a good frame resets the backoff
                    if index % self.stride == 0:
                        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                        yield self._count(Frame(np.ascontiguousarray(image[..., ::-1]), index,
                                                time.monotonic() - started, self.ref, now))
                    index += 1
                    continue
                cap.release()
                cap = None
                while cap is None:
                    if attempt >= len(delays):
                        raise StreamDropped(N_("{ref}: stream dropped and did not come back after {attempts} "
                                               "reconnect attempts; {frames} frames were read and kept"),
                                            ref=self.ref, attempts=len(delays), frames=self.frames_read)
                    self._sleep(delays[attempt])
                    attempt += 1
                    self.reconnects += 1
                    cap = self._open("stream")
        finally:
            if cap is not None:
                cap.release()


def source_kind(ref: str) -> str:
    """image | folder | video | stream, from a path or URL."""
    if ref.lower().startswith(STREAM_SCHEMES):
        return "stream"
    p = Path(ref)
    if p.is_dir():
        return "folder"
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if not p.exists():
        raise SourceError(N_("{ref}: no such file, folder or stream URL"), ref=ref)
    images, videos = ", ".join(IMAGE_SUFFIXES), ", ".join(VIDEO_SUFFIXES[:6])
    if not suffix:
        raise SourceError(N_("{ref}: unknown source type (no suffix); give an image ({images}), a video "
                             "({videos}, ...), a folder or an rtsp:// or http:// stream"),
                          ref=ref, images=images, videos=videos)
    raise SourceError(N_("{ref}: unknown source type {suffix}; give an image ({images}), a video ({videos}, ...), "
                         "a folder or an rtsp:// or http:// stream"),
                      ref=ref, suffix=suffix, images=images, videos=videos)


def open_source(ref: str | Path, *, reconnect: Reconnect = Reconnect(), stride: int = 1,
                sleep: Callable[[float], None] = time.sleep) -> Source:
    """A :class:`Source` for a path or URL (checked: a missing file is a SourceError now, not later)."""
    ref = str(ref)
    kind = source_kind(ref)
    if kind in ("image", "video") and not Path(ref).exists():
        raise SourceError(N_("{ref}: no such file"), ref=ref)
    return Source(ref, kind, reconnect=reconnect, stride=stride, sleep=sleep)
