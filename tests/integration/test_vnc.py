"""
VNC against a real desktop: Xvnc on its own display, the real site on a
real port, a real RFB client through C{/vnc} and through the raw listener,
and headless Chromium running the noVNC viewer page.
"""

from __future__ import annotations

import socket
from typing import Any

import treq
from PIL import Image
from twisted.internet import defer, reactor, threads
from twisted.web.client import HTTPConnectionPool

from agentdesktop.vnc.splice import READ_SIZE, RFBSocket
from agentdesktop.vnc.websocket import VNCEndpoint
from tests import rfbclient
from tests.integration.harness import (
    DesktopTestCase,
    grab,
    paintPattern,
    paintSolid,
    sleep,
)

class VNCDesktopTestCase(DesktopTestCase):
    geometry = (640, 480)
    windowManager = None

    def vncEndpoint(self) -> VNCEndpoint:
        endpoint = self.root.getStaticEntity(b"api").getStaticEntity(b"v0") \
            .getStaticEntity(b"desktop").getStaticEntity(b"vnc")
        assert isinstance(endpoint, VNCEndpoint)
        return endpoint


class WebSocketTests(VNCDesktopTestCase):
    async def test_framebufferEqualsScreen(self) -> None:
        """
        An RFB 3.8 handshake through /vnc, then a full Raw update, equals a
        python-xlib grab of the same screen pixel for pixel.
        """
        info = await self.startDesktop()
        await threads.deferToThread(paintPattern, info)
        client, proto = await self.viewer()
        self.assertEqual((client.width, client.height), self.geometry)
        self.assertIsNone(proto.websocket_protocol_in_use)
        got = await self.fullUpdate(client)
        want = await threads.deferToThread(grab, info)
        self.assertSameImage(got, want)

    async def test_binarySubprotocol(self) -> None:
        await self.startDesktop()
        client, proto = await self.viewer(["binary"])
        self.assertEqual(proto.websocket_protocol_in_use, "binary")

    async def test_tenViewers(self) -> None:
        """Ten viewers at once, each with its own RFB connection, all correct."""
        info = await self.startDesktop()
        await threads.deferToThread(paintPattern, info)
        want = await threads.deferToThread(grab, info)

        async def one() -> Image.Image:
            client, _ = await self.viewer()
            return await self.fullUpdate(client)

        images = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(one()) for _ in range(10)], consumeErrors=True
        )
        vncResource = self.vncEndpoint()
        self.assertEqual(len(vncResource.sessions), 10)
        self.assertEqual(len({id(s.rfb) for s in vncResource.sessions}), 10)
        for image in images:
            self.assertSameImage(image, want)

    async def test_closingViewerClosesRFB(self) -> None:
        await self.startDesktop()
        client, proto = await self.viewer()
        vncResource = self.vncEndpoint()
        (session,) = vncResource.sessions
        rfb = session.rfb
        proto.sendClose(code=1000)
        await proto.closedWith
        for _ in range(200):
            if rfb.lost:
                break
            await sleep(0.01)
        self.assertTrue(rfb.lost)
        self.assertEqual(vncResource.sessions, set())

    async def test_textFrameClosesWithProtocolError(self) -> None:
        await self.startDesktop()
        client, proto = await self.viewer()
        proto.sendMessage(b"hello", isBinary=False)
        _, code, _ = await proto.closedWith
        self.assertIn(code, (1002, 1003))


def selfSignedLocalhost() -> tuple[bytes, bytes]:
    """A throwaway key and certificate for "localhost", PEM."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    keyPEM = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return keyPEM, cert.public_bytes(serialization.Encoding.PEM)


class TLSTests(VNCDesktopTestCase):
    async def test_framebufferOverTLS(self) -> None:
        """
        Through a TLS listener (--listen ssl:...), RFB bytes go through the
        encryption: a wss:// viewer gets the screen pixel for pixel.  (A TLS
        transport hands out the TCP socket under it on request; writing
        there directly would corrupt the stream.)
        """
        from twisted.internet import ssl

        keyPEM, certPEM = selfSignedLocalhost()
        server = ssl.PrivateCertificate.loadPEM(keyPEM + certPEM).options()
        info = await self.startDesktop(tls=server)
        await threads.deferToThread(paintPattern, info)
        trust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(certPEM))
        client, proto = await self.viewer(tls=trust)
        for _ in range(3):
            got = await self.fullUpdate(client)
        want = await threads.deferToThread(grab, info)
        self.assertSameImage(got, want)


class SlowViewerTests(VNCDesktopTestCase):
    geometry = (1920, 1080)

    async def assertStalledViewerBounded(
        self, viewerTransport: Any, rfbTransport: RFBSocket, clientTransport: Any,
        client: rfbclient.RFBClient,
    ) -> None:
        """
        CLIENTTRANSPORT stops reading and asks for an 8 MB update: the
        service stops reading from Xvnc; what it holds for the viewer stays
        under one read plus a frame header; once the viewer reads again
        every byte arrives and the picture is the screen.
        """
        # Keep the kernel from absorbing a whole update for the stalled viewer.
        clientTransport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        clientTransport.pauseProducing()
        client.requestUpdate(incremental=False)  # 1920x1080x4: 8 MB
        bound = READ_SIZE + 16
        largest = 0

        def held() -> int:
            return len(viewerTransport.dataBuffer) - viewerTransport.offset + viewerTransport._tempDataLen

        for _ in range(1000):
            largest = max(largest, held())
            if rfbTransport.paused and held():
                break
            await sleep(0.01)
        self.assertTrue(rfbTransport.paused, "the splice never paused Xvnc")
        self.assertNotIn(rfbTransport, reactor.getReaders())
        for _ in range(50):
            largest = max(largest, held())
            await sleep(0.01)
        self.assertLessEqual(largest, bound)
        self.assertLess(client.reader.received, self.info.width * self.info.height * 4)
        clientTransport.resumeProducing()
        want = await threads.deferToThread(grab, self.info)
        await client.readUpdate()
        self.assertSameImage(client.image(), want)

    async def test_slowWebSocketViewerBoundedMemory(self) -> None:
        info = await self.startDesktop()
        await threads.deferToThread(paintPattern, info)
        client, proto = await self.viewer()
        vncResource = self.vncEndpoint()
        (session,) = vncResource.sessions
        await self.assertStalledViewerBounded(
            session.transport, session.rfb.transport, proto.transport, client
        )

    async def test_slowRawViewerBoundedMemory(self) -> None:
        """The same through the raw RFB listener (--vnc-listen)."""
        info = await self.startDesktop()
        await threads.deferToThread(paintPattern, info)
        client, proto, factory = await self.rawViewer()
        (viewer,) = factory.sessions
        await self.assertStalledViewerBounded(
            viewer.transport, viewer.rfb.transport, proto.transport, client
        )


class RawListenerTests(VNCDesktopTestCase):
    async def test_rawListener(self) -> None:
        info = await self.startDesktop()
        await threads.deferToThread(paintPattern, info)
        client, _, _ = await self.rawViewer()
        got = await self.fullUpdate(client)
        want = await threads.deferToThread(grab, info)
        self.assertSameImage(got, want)


CANVAS_PIXEL = """
(() => {
  const c = document.querySelector('#screen canvas');
  if (!c || document.body.dataset.connected !== '1' || !c.width) return null;
  const d = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
  return {rgb: [d[0], d[1], d[2]], width: c.width, height: c.height,
          status: document.getElementById('status').textContent};
})()
"""


class BrowserTests(VNCDesktopTestCase):
    async def test_viewerDrawsDesktop(self) -> None:
        """
        Headless Chromium opens the viewer page; the noVNC canvas shows the
        desktop's distinctive colour.  With nobody in control, noVNC is in
        view-only mode.  After the connection drops the page reconnects.
        """
        info = await self.startDesktop()
        colour = (0x12, 0xAB, 0x34)
        await threads.deferToThread(paintSolid, info, 0x12AB34)
        cdp = await self.startChromium()
        await cdp.call("Page.navigate", url=self.base)
        seen = await self.waitFor(cdp, CANVAS_PIXEL, lambda v: v and tuple(v["rgb"]) == colour)
        self.assertIsNotNone(seen, "the viewer never connected")
        self.assertEqual(tuple(seen["rgb"]), colour)
        self.assertEqual((seen["width"], seen["height"]), self.geometry)
        self.assertEqual(seen["status"], "Connected")
        self.assertIs(await cdp.evaluate("window.rfb.viewOnly"), True)
        vncResource = self.vncEndpoint()
        (first,) = vncResource.sessions

        first.transport.abortConnection()
        seen = await self.waitFor(
            cdp, CANVAS_PIXEL,
            lambda v: v is not None and len(vncResource.sessions) == 1
            and first not in vncResource.sessions,
        )
        self.assertEqual(len(vncResource.sessions), 1)
        self.assertNotIn(first, vncResource.sessions)
        self.assertEqual(seen["status"], "Connected")
        self.assertIs(await cdp.evaluate("window.rfb.viewOnly"), True)

    async def test_viewerPassesTokenWhenAllowed(self) -> None:
        """
        With a token configured and --allow-token-in-url, ?token= on the
        page URL is enough: the page and /vnc get in (through the page's
        session cookie), and the token leaves the address bar.
        """
        info = await self.startDesktop(token="s3cret-token", sharing={"allowTokenInURL": True})
        await threads.deferToThread(paintSolid, info, 0x3456CD)
        cdp = await self.startChromium()
        await cdp.call("Page.navigate", url=self.base + "?token=s3cret-token")
        seen = await self.waitFor(
            cdp, CANVAS_PIXEL, lambda v: v and tuple(v["rgb"]) == (0x34, 0x56, 0xCD)
        )
        self.assertIsNotNone(seen, "the viewer never connected")
        self.assertEqual(tuple(seen["rgb"]), (0x34, 0x56, 0xCD))
        self.assertNotIn("s3cret", await cdp.evaluate("window.location.href"))
        self.assertEqual(await cdp.evaluate("document.cookie"), "")  # HttpOnly
        response = await treq.get(self.base + "vnc", pool=HTTPConnectionPool(reactor, False))
        await response.content()
        self.assertEqual(response.code, 401)
