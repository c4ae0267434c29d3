"""
The recorder with the real ffmpeg on a real Xvnc desktop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from email import message_from_bytes
from io import BytesIO
from typing import Any

from PIL import Image
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from agentdesktop.desktop import DesktopConfig, X11Desktop
from agentdesktop.errors import APIError
from agentdesktop.recording import Recorder, RecorderConfig


def probe(path: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration:stream=codec_name,pix_fmt,width,height",
         "-of", "json", path],
        capture_output=True, check=True,
    ).stdout
    return json.loads(out)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class RecordingIntegrationTests(unittest.TestCase):
    timeout = 120

    async def _setUp(self, **config: Any) -> None:
        self.desktop = X11Desktop(reactor, DesktopConfig(width=640, height=480, windowManager=None))
        self.addCleanup(self.desktop.stop)
        self.info = await self.desktop.start()
        self.dir = tempfile.mkdtemp(prefix="rec-test-")
        # Cleanups run last first: the directory must be empty by then.
        self.addCleanup(os.rmdir, self.dir)
        self.recorder = Recorder(reactor, reactor, self.desktop, RecorderConfig(directory=self.dir, **config))
        self.addCleanup(self.recorder.close)
        self.env = dict(os.environ, DISPLAY=self.info.display, XAUTHORITY=self.info.xauthority)

    async def _paint(self, seconds: float) -> None:
        colours = ["red", "green", "blue", "yellow", "white", "black"]
        steps = int(seconds / 0.5)
        for i in range(steps):
            subprocess.run(["xsetroot", "-solid", colours[i % len(colours)]], env=self.env, check=True)
            await task.deferLater(reactor, 0.5, lambda: None)

    def setUp(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._setUp())

    def _ffmpegPids(self) -> list[int]:
        pids = []
        for rec in self.recorder._recordings.values():
            if rec.child is not None and not rec.child.exited:
                pids.append(rec.child.pid)
        return pids

    @defer.inlineCallbacks
    def test_recordAndStop(self):
        rid = str(uuid.uuid4())
        began = time.monotonic()
        yield self.recorder.start(rid)
        yield defer.Deferred.fromCoroutine(self._paint(3))
        wall = time.monotonic() - began
        result = yield self.recorder.stop(rid)
        info = probe(result.videoPath)
        stream = info["streams"][0]
        self.assertEqual((stream["codec_name"], stream["pix_fmt"]), ("h264", "yuv420p"))
        self.assertEqual((stream["width"], stream["height"]), (640, 480))
        duration = float(info["format"]["duration"])
        self.assertLess(abs(duration - wall), wall * 0.10, (duration, wall))
        self.assertIsNotNone(result.thumbnailPath)
        with Image.open(result.thumbnailPath) as image:
            image.load()
            self.assertEqual(image.format, "JPEG")
            self.assertLessEqual(image.width, 640)
        self.assertEqual(os.path.basename(result.videoPath), rid + ".mp4")
        again = yield self.recorder.stop(rid)
        self.assertEqual(again, result)

    @defer.inlineCallbacks
    def test_twoConcurrent(self):
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        yield defer.gatherResults([self.recorder.start(a), self.recorder.start(b)])
        self.assertEqual(len(self._ffmpegPids()), 2)
        yield defer.Deferred.fromCoroutine(self._paint(2))
        ra, rb = yield defer.gatherResults([self.recorder.stop(a), self.recorder.stop(b)])
        self.assertNotEqual(ra.videoPath, rb.videoPath)
        for r in (ra, rb):
            self.assertEqual(probe(r.videoPath)["streams"][0]["codec_name"], "h264")

    @defer.inlineCallbacks
    def test_sigkillLeavesPlayableVideo(self):
        rid = str(uuid.uuid4())
        yield self.recorder.start(rid)
        yield defer.Deferred.fromCoroutine(self._paint(3))
        [pid] = self._ffmpegPids()
        os.kill(pid, signal.SIGKILL)
        result = yield self.recorder.stop(rid)
        info = probe(result.videoPath)
        self.assertEqual(info["streams"][0]["codec_name"], "h264")
        self.assertGreater(float(info["format"]["duration"]), 1.5)

    @defer.inlineCallbacks
    def test_closeDuringRecording(self):
        rid = str(uuid.uuid4())
        yield self.recorder.start(rid)
        pids = self._ffmpegPids()
        self.assertEqual(len(pids), 1)
        yield task.deferLater(reactor, 1, lambda: None)
        self.assertTrue(os.listdir(self.dir))
        yield self.recorder.close()
        self.assertFalse(alive(pids[0]))
        self.assertEqual(os.listdir(self.dir), [])
        with self.assertRaises(APIError):
            yield self.recorder.start(str(uuid.uuid4()))

    @defer.inlineCallbacks
    def test_httpMultipart(self):
        from treq.testing import StubTreq
        from agentdesktop.recordingweb import recordingChildren
        from agentdesktop.web import State, makeRoot

        state = State(self.desktop, None, recorder=self.recorder)
        treq = StubTreq(makeRoot(state, extra=recordingChildren(state)))
        # StubTreq moves bytes only when flushed.
        pump = task.LoopingCall(treq.flush)
        pump.start(0.02)
        self.addCleanup(pump.stop)
        rid = str(uuid.uuid4())
        base = "http://x/api/v0/desktop/recording/"
        response = yield treq.post(base + "start", data=json.dumps({"recording_id": rid.upper()}).encode())
        self.assertEqual(response.code, 200, (yield treq.content(response)))
        self.assertEqual((yield treq.json_content(response)), {"message": "Recording started."})
        yield defer.Deferred.fromCoroutine(self._paint(2))
        response = yield treq.post(base + "stop", data=json.dumps({"recording_id": rid}).encode())
        self.assertEqual(response.code, 200)
        body = yield treq.content(response)
        ctype = response.headers.getRawHeaders("content-type")[0]
        message = message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        parts = message.get_payload()
        self.assertEqual([p.get_content_type() for p in parts], ["video/mp4", "image/jpeg"])
        video = parts[0].get_payload(decode=True)
        with open(os.path.join(self.dir, rid + ".mp4"), "rb") as f:
            self.assertEqual(video, f.read())
        Image.open(BytesIO(parts[1].get_payload(decode=True))).load()
