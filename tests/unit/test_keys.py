from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.keys import UnknownKey, keysymForCharacter, parseKeys


class KeyNames(SynchronousTestCase):
    def test_modelNames(self) -> None:
        cases = {
            "Enter": [["Return"]], "Return": [["Return"]], "ctrl": [["Control_L"]],
            "Control": [["Control_L"]], "cmd": [["Super_L"]], "super": [["Super_L"]],
            "meta": [["Super_L"]], "esc": [["Escape"]], "PageUp": [["Prior"]],
            "pagedown": [["Next"]], "arrowleft": [["Left"]], "f1": [["F1"]],
            "f24": [["F24"]], "CTRL+L": [["Control_L", "l"]], "A": [["a"]],
            "ctrl+shift+t": [["Control_L", "Shift_L", "t"]],
            "ctrl++": [["Control_L", "plus"]], "alt+F4": [["Alt_L", "F4"]],
            "ctrl+a Delete": [["Control_L", "a"], ["Delete"]],
            "XF86AudioMute": [["XF86AudioMute"]], "KP_Add": [["KP_Add"]],
            "U1F642": [["U1F642"]], "é": [["U00E9"]], "-": [["minus"]],
            "Multiply": [["KP_Multiply"]], "Add": [["KP_Add"]], "Subtract": [["KP_Subtract"]],
            "Decimal": [["KP_Decimal"]], "Divide": [["KP_Divide"]], "Separator": [["KP_Separator"]],
            "ControlOrMeta+A": [["Control_L", "a"]], "Control+A": [["Control_L", "a"]],
        }
        for text, expected in cases.items():
            self.assertEqual(parseKeys(text), expected, text)

    def test_caseInsensitive(self) -> None:
        """Any keysym in any case; of names differing only in case, the unshifted one."""
        cases = {
            "RETURN": "Return", "PAGE_UP": "Prior", "kp_0": "KP_0", "KP_ENTER": "KP_Enter",
            "xf86audioplay": "XF86AudioPlay", "hyper_l": "Hyper_L", "EXCLAM": "exclam",
            "cancel": "Cancel", "AACUTE": "aacute", "Aacute": "Aacute", "ESCAPE": "Escape",
        }
        for text, expected in cases.items():
            self.assertEqual(parseKeys(text), [[expected]], text)

    def test_unknownNamesTheKey(self) -> None:
        for text, name in [("foo", "foo"), ("ctrl+bogus", "bogus"), ("", ""), ("ctrl+", "ctrl+")]:
            with self.assertRaises(UnknownKey) as cm:
                parseKeys(text)
            self.assertEqual(cm.exception.name, name)

    def test_characters(self) -> None:
        self.assertEqual(keysymForCharacter("a"), ord("a"))
        self.assertEqual(keysymForCharacter("é"), 0xE9)
        self.assertEqual(keysymForCharacter("€"), 0x010020AC)
        self.assertEqual(keysymForCharacter("🙂"), 0x0101F642)
        self.assertEqual(keysymForCharacter("\n"), 0xFF0D)

    @given(st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=1))
    def test_anySingleLetterIsAKey(self, ch: str) -> None:
        [[name]] = parseKeys(ch)
        self.assertTrue(name)
