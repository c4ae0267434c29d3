"""
C{/api/v0/desktop/recording/start} and C{/stop}: the recorder over HTTP.
A stopped recording goes out as C{multipart/mixed}, streamed from its files.
"""

from __future__ import annotations

import os
import secrets
from typing import IO, Any

from twisted.logger import Logger
from twisted.web import resource, server
from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from agentdesktop.errors import APIError
from agentdesktop.interfaces import IRecorder, RecordingResult
from agentdesktop.request import decodeRecordingId
from agentdesktop.state import ServiceState
from agentdesktop.web.apischema import Operation, Response, obj, string
from agentdesktop.web.resource import Call, Endpoint, Tree

RECORDING_ID = obj({"recording_id": string(
    "A UUID in any spelling (normalized to canonical lower case).", format="uuid")},
    ["recording_id"])

log = Logger()


CHUNK = 64 * 1024


@implementer(IPushProducer)
class FileProducer:
    """
    Writes SIZE bytes of an open file to a request, a chunk at a time for
    as long as the transport does not pause it.  (A push producer: the HTTP
    channel would drive a pull producer through the global cooperator.)
    """

    def __init__(self, request: server.Request, f: IO[bytes], size: int) -> None:
        self.request = request
        self.file = f
        self.remaining = size
        self.paused = False
        self.writing = False
        self.done: defer.Deferred[None] = defer.Deferred()

    def start(self) -> defer.Deferred[None]:
        self.request.registerProducer(self, True)
        self.resumeProducing()
        return self.done

    def resumeProducing(self) -> None:
        self.paused = False
        if self.writing:
            return
        self.writing = True
        try:
            while not self.paused and not self.done.called:
                data = self.file.read(min(CHUNK, self.remaining)) if self.remaining else b""
                if not data:
                    self.request.unregisterProducer()
                    if self.remaining:
                        self.done.errback(OSError(f"file ended {self.remaining} bytes early"))
                    else:
                        self.done.callback(None)
                    return
                self.remaining -= len(data)
                self.request.write(data)
        finally:
            self.writing = False

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        if not self.done.called:
            self.done.errback(ConnectionError("the client went away"))


def _recorder(state: ServiceState, message: str) -> IRecorder:
    if state.recorder is None:
        raise APIError(500, message, "recording is not configured")
    return state.recorder


class RecordingStartEndpoint(Endpoint):
    # The reference API answers a bad body with 400 even while stopping.
    shutdownFirst = False
    api = {"POST": Operation(
        "startRecording", "Start recording the screen to MP4", tags=["recording"],
        body=RECORDING_ID,
        responses={
            200: Response("Recording (also when this id already was).", obj(
                {"message": string(enum=["Recording started."])}, ["message"], closed=True)),
            500: "`Failed to start recording.`: --max-recordings are active, or the desktop or "
                 "ffmpeg failed (detail: why).",
        },
    )}

    async def handle_POST(self, call: Call) -> Any:
        recordingId = decodeRecordingId(call.body())
        call.action = "recording/start"
        self.refuseWhileStopping()
        await _recorder(self.state, "Failed to start recording.").start(recordingId)
        return {"message": "Recording started."}


class MultipartBody:
    """
    The frame of a C{multipart/mixed} body whose parts are files: the
    headers and boundaries as bytes, the files as open file objects, so
    the body is streamed and its length known beforehand.
    """

    def __init__(self, parts: list[tuple[bytes, IO[bytes], int]], boundary: bytes | None = None) -> None:
        self.boundary = boundary or secrets.token_hex(16).encode("ascii")
        self.segments: list[bytes | tuple[IO[bytes], int]] = []
        for contentType, f, size in parts:
            self.segments.append(
                b"--" + self.boundary + b"\r\n"
                + b"Content-Type: " + contentType + b"\r\n"
                + b"Content-Length: " + str(size).encode("ascii") + b"\r\n\r\n"
            )
            self.segments.append((f, size))
            self.segments.append(b"\r\n")
        self.segments.append(b"--" + self.boundary + b"--\r\n")

    @property
    def contentType(self) -> bytes:
        return b"multipart/mixed; boundary=" + self.boundary

    @property
    def length(self) -> int:
        return sum(len(s) if isinstance(s, bytes) else s[1] for s in self.segments)

    async def writeTo(self, request: server.Request) -> None:
        """
        Write the body, each file through a pull producer.

        @raise Exception: when the client goes away meanwhile.
        """
        for segment in self.segments:
            if isinstance(segment, bytes):
                request.write(segment)
            else:
                await FileProducer(request, segment[0], segment[1]).start()

    def close(self) -> None:
        for segment in self.segments:
            if not isinstance(segment, bytes):
                segment[0].close()


def openResult(result: RecordingResult) -> MultipartBody:
    """
    Open the recording's files (so deleting them meanwhile is harmless)
    and frame them: the video, then the thumbnail when there is one.
    """
    files: list[tuple[bytes, IO[bytes], int]] = []
    try:
        video = open(result.videoPath, "rb")
        files.append((b"video/mp4", video, os.fstat(video.fileno()).st_size))
        if result.thumbnailPath is not None:
            try:
                thumb = open(result.thumbnailPath, "rb")
            except OSError:
                pass
            else:
                files.append((b"image/jpeg", thumb, os.fstat(thumb.fileno()).st_size))
    except OSError:
        for _, f, _ in files:
            f.close()
        raise APIError(404, "Recording not found.", "its files are gone") from None
    return MultipartBody(files)


class RecordingStopEndpoint(Endpoint):
    shutdownFirst = False
    api = {"POST": Operation(
        "stopRecording", "Stop a recording; its video and thumbnail", tags=["recording"],
        body=RECORDING_ID,
        responses={
            200: Response("Part 1 the video (video/mp4), part 2 the thumbnail (image/jpeg) "
                          "when there is one.", contentType="multipart/mixed"),
            404: "`Recording not found.`",
            413: "The body, or `Recording file exceeds maximum allowed size.`",
            500: "`Recording is corrupted.`, or `Failed to stop recording.`",
        },
    )}

    async def handle_POST(self, call: Call) -> Any:
        recordingId = decodeRecordingId(call.body())
        call.action = "recording/stop"
        self.refuseWhileStopping()
        # The recorder finishes the recording whether or not we wait.
        result = await _recorder(self.state, "Failed to stop recording.").stop(recordingId)
        if call.gone:
            return None
        request = call.request
        body = openResult(result)
        try:
            request.setResponseCode(200)
            request.setHeader(b"content-type", body.contentType)
            request.setHeader(b"cache-control", b"no-store")
            request.setHeader(b"content-length", str(body.length).encode("ascii"))
            try:
                await body.writeTo(request)
            except Exception:
                if not call.gone:
                    raise
                log.info("Client went away while recording {id} was sent", id=recordingId)
        finally:
            body.close()
        return None


def recordingTree(state: ServiceState) -> resource.Resource:
    """C{/recording/start} and C{/recording/stop}."""
    node = Tree(state)
    node.putChild(b"start", RecordingStartEndpoint(state))
    node.putChild(b"stop", RecordingStopEndpoint(state))
    return node


__all__ = ["MultipartBody", "RecordingStartEndpoint", "RecordingStopEndpoint", "recordingTree"]
