from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.geometry import (
    declaredSize,
    fitInside,
    recommendedSize,
    rectToDeclared,
    scale,
    toDeclared,
    toNative,
    toolsetSize,
)

N = (1920, 1080)


class WorkedExamples(SynchronousTestCase):
    def test_declaredToNative1280(self) -> None:
        for point, native in [
            ((0, 0), (0, 0)), ((640, 360), (960, 540)), ((1279, 719), (1919, 1079)),
            ((5000, -5), (1919, 0)), ((853, 402), (1280, 603)), ((1, 1), (2, 2)),
            ((100, 200), (150, 300)),
        ]:
            self.assertEqual(toNative(point, (1280, 720), N), native, point)

    def test_1366(self) -> None:
        d = (1366, 768)
        self.assertEqual(toDeclared((960, 540), N, d), (683, 384))
        self.assertEqual(toDeclared((1919, 1079), N, d), (1365, 767))
        self.assertEqual(toDeclared((-10, 5000), N, d), (0, 767))
        self.assertEqual(toNative((1365, 767), d, N), (1919, 1079))

    def test_1440(self) -> None:
        self.assertEqual(toNative((720, 450), (1440, 900), N), (960, 540))
        self.assertEqual(toNative((1439, 899), (1440, 900), N), (1919, 1079))

    def test_cursor(self) -> None:
        self.assertEqual(toDeclared((960, 540), N, (1280, 720)), (640, 360))

    def test_roundsHalfAwayFromZero(self) -> None:
        # (0 + .5) * 2 / 1 - .5 = 0.5 and (2 + .5) * 8 / 4 - .5 = 4.5: exact
        # halves, where round() would give 0 and 4.
        self.assertEqual(scale(0, 1, 2), 1)
        self.assertEqual(scale(2, 4, 8), 5)

    def test_degenerate(self) -> None:
        self.assertEqual(scale(5, 10, 0), 0)
        self.assertEqual(scale(5, 0, 10), 5)
        self.assertEqual(scale(50, 0, 10), 9)
        self.assertEqual(scale(-3, 10, 10), 0)

    def test_declaredSize(self) -> None:
        self.assertEqual(declaredSize(N, None, None), N)
        self.assertEqual(declaredSize(N, 1280, 0), (1280, 1080))
        self.assertEqual(declaredSize(N, -1, 720), (1920, 720))

    def test_recommended(self) -> None:
        for native, rec in [
            ((1920, 1080), (1280, 720)), ((1920, 1200), (1280, 800)),
            ((2048, 1536), (1024, 768)), ((1568, 1000), (1280, 816)),
            ((1000, 2000), (758, 1516)), ((1366, 768), (1366, 768)),
        ]:
            self.assertEqual(recommendedSize(*native), rec, native)

    def test_fitInside(self) -> None:
        self.assertEqual(fitInside((960, 540), (1280, 720)), (1280, 720))
        self.assertEqual(fitInside((100, 400), (1280, 720)), (180, 720))


sizes = st.integers(min_value=1, max_value=8192)


class Properties(SynchronousTestCase):
    @given(st.integers(-10**6, 10**6) | st.integers(min_value=10**300) | st.integers(max_value=-10**300),
           sizes, sizes)
    def test_inRange(self, c: int, src: int, dst: int) -> None:
        self.assertTrue(0 <= scale(c, src, dst) <= dst - 1)

    @given(st.data(), sizes, sizes)
    def test_roundTripWithinOnePixel(self, data: st.DataObject, native: int, declared: int) -> None:
        # Models declare a size no larger than the screen.
        native, declared = max(native, declared), min(native, declared)
        c = data.draw(st.integers(0, declared - 1))
        back = scale(scale(c, declared, native), native, declared)
        self.assertLessEqual(abs(back - c), 1)

    @given(sizes, sizes)
    def test_recommendedFits(self, w: int, h: int) -> None:
        rw, rh = recommendedSize(w, h)
        self.assertLessEqual(max(rw, rh), 1568)
        self.assertLessEqual(rw * rh, 1_150_000)
        self.assertLessEqual(rw, w)
        self.assertLessEqual(rh, h)


class Rectangles(SynchronousTestCase):
    def test_examples(self) -> None:
        self.assertEqual(rectToDeclared((600, 300, 484, 316), N, (1280, 720)),
                         (400, 200, 323, 211))
        self.assertEqual(rectToDeclared((0, 0, 1920, 1080), N, (1280, 720)), (0, 0, 1280, 720))
        # Same size: unchanged, off-screen parts included.
        self.assertEqual(rectToDeclared((-50, -20, 100, 40), N, N), (-50, -20, 100, 40))
        # Not clamped: a window partly off the screen keeps its extent.
        self.assertEqual(rectToDeclared((-300, 900, 600, 300), N, (1280, 720)),
                         (-200, 600, 400, 200))

    @given(
        st.integers(1, 4000), st.integers(1, 4000), st.integers(1, 4000), st.integers(1, 4000),
        st.integers(0, 3000), st.integers(0, 3000), st.integers(4, 3000), st.integers(4, 3000),
    )
    def test_centreMapsBackInside(
        self, nw: int, nh: int, dw: int, dh: int, x: int, y: int, w: int, h: int
    ) -> None:
        """The centre of a declared window, clicked, lands inside the native one."""
        if x + w > nw or y + h > nh or dw > nw or dh > nh:
            return
        dx, dy, dwid, dhei = rectToDeclared((x, y, w, h), (nw, nh), (dw, dh))
        if dwid < 1 or dhei < 1:
            return
        cx, cy = toNative((dx + dwid // 2, dy + dhei // 2), (dw, dh), (nw, nh))
        self.assertTrue(x <= cx < x + w and y <= cy < y + h, (cx, cy))


class ToolsetSize(SynchronousTestCase):
    def test_examples(self) -> None:
        for native, size in [
            ((1920, 1080), (1920, 1080)), ((1080, 1920), (1080, 1920)),
            ((3840, 2160), (2000, 1125)), ((2560, 1440), (2000, 1125)),
            ((2560, 2560), (1932, 1932)), ((1932, 1932), (1932, 1932)),
            ((5120, 1440), (2000, 562)), ((100, 10000), (20, 2000)), ((0, 0), (0, 0)),
        ]:
            self.assertEqual(toolsetSize(*native), size, native)

    @given(st.integers(1, 9000), st.integers(1, 9000))
    def test_largestThatFits(self, w: int, h: int) -> None:
        """The size fits the limits, keeps the aspect, and one pixel more would not fit."""
        tw, th = toolsetSize(w, h)

        def tiles(a: int, b: int) -> int:
            return -(-a // 28) * -(-b // 28)

        self.assertLessEqual(max(tw, th), 2000)
        self.assertLessEqual(tiles(tw, th), 4784)
        if (tw, th) == (w, h):
            return
        self.assertLess(tw * th, w * h)
        if w >= h:
            self.assertEqual(th, max(1, h * tw // w))
            bigger = (tw + 1, h * (tw + 1) // w)
        else:
            self.assertEqual(tw, max(1, w * th // h))
            bigger = (w * (th + 1) // h, th + 1)
        self.assertTrue(max(bigger) > 2000 or tiles(*bigger) > 4784 or max(bigger) > max(w, h))
