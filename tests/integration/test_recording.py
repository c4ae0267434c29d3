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

import treq
from PIL import Image
from twisted.internet import defer, reactor

from agentdesktop.errors import APIError
from agentdesktop.recording import Recorder, RecorderConfig
from tests.integration.harness import DesktopTestCase, sleep


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


class RecordingIntegrationTests(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    async def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="rec-test-")
        # Cleanups run last first: the directory must be empty by then.
        self.addCleanup(os.rmdir, self.dir)
        await self.startDesktop()
        self.recorder = Recorder(reactor, reactor, self.desktop, RecorderConfig(directory=self.dir))
        self.state.recorder = self.recorder
        self.addCleanup(self.recorder.close)

    async def _paint(self, seconds: float) -> None:
        colours = ["red", "green", "blue", "yellow", "white", "black"]
        steps = int(seconds / 0.5)
        for i in range(steps):
            subprocess.run(["xsetroot", "-solid", colours[i % len(colours)]], env=self.env(), check=True)
            await sleep(0.5)

    def _ffmpegPids(self) -> list[int]:
        pids = []
        for rec in self.recorder._recordings.values():
            if rec.child is not None and not rec.child.exited:
                pids.append(rec.child.pid)
        return pids

    async def test_recordAndStop(self) -> None:
        rid = str(uuid.uuid4())
        began = time.monotonic()
        await self.recorder.start(rid)
        await self._paint(3)
        wall = time.monotonic() - began
        result = await self.recorder.stop(rid)
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
        again = await self.recorder.stop(rid)
        self.assertEqual(again, result)

    async def test_twoConcurrent(self) -> None:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        await defer.gatherResults([self.recorder.start(a), self.recorder.start(b)])
        self.assertEqual(len(self._ffmpegPids()), 2)
        await self._paint(2)
        ra, rb = await defer.gatherResults([self.recorder.stop(a), self.recorder.stop(b)])
        self.assertNotEqual(ra.videoPath, rb.videoPath)
        for r in (ra, rb):
            self.assertEqual(probe(r.videoPath)["streams"][0]["codec_name"], "h264")

    async def test_sigkillLeavesPlayableVideo(self) -> None:
        rid = str(uuid.uuid4())
        await self.recorder.start(rid)
        await self._paint(3)
        [pid] = self._ffmpegPids()
        os.kill(pid, signal.SIGKILL)
        result = await self.recorder.stop(rid)
        info = probe(result.videoPath)
        self.assertEqual(info["streams"][0]["codec_name"], "h264")
        self.assertGreater(float(info["format"]["duration"]), 1.5)

    async def test_closeDuringRecording(self) -> None:
        rid = str(uuid.uuid4())
        await self.recorder.start(rid)
        pids = self._ffmpegPids()
        self.assertEqual(len(pids), 1)
        await sleep(1)
        self.assertTrue(os.listdir(self.dir))
        await self.recorder.close()
        self.assertFalse(alive(pids[0]))
        self.assertEqual(os.listdir(self.dir), [])
        with self.assertRaises(APIError):
            await self.recorder.start(str(uuid.uuid4()))

    async def test_httpMultipart(self) -> None:
        rid = str(uuid.uuid4())
        base = self.base + "recording/"
        response = await treq.post(base + "start", data=json.dumps({"recording_id": rid.upper()}).encode(),
                                   pool=self.pool)
        self.assertEqual(response.code, 200, (await response.content()))
        self.assertEqual((await response.json()), {"message": "Recording started."})
        await self._paint(2)
        response = await treq.post(base + "stop", data=json.dumps({"recording_id": rid}).encode(),
                                   pool=self.pool)
        self.assertEqual(response.code, 200)
        body = await response.content()
        ctype = response.headers.getRawHeaders("content-type")[0]
        message = message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        parts = message.get_payload()
        self.assertEqual([p.get_content_type() for p in parts], ["video/mp4", "image/jpeg"])
        video = parts[0].get_payload(decode=True)
        with open(os.path.join(self.dir, rid + ".mp4"), "rb") as f:
            self.assertEqual(video, f.read())
        Image.open(BytesIO(parts[1].get_payload(decode=True))).load()
