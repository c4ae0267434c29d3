"""
Key names as models send them, normalized to X keysym names that xdotool
accepts (SPEC section 5).  Pure: no reactor, no X connection.
"""

from __future__ import annotations

import functools

from Xlib import XK

for _group in (
    "xkb", "xf86", "latin2", "latin3", "latin4", "greek", "cyrillic",
    "technical", "special", "publishing", "katakana", "arabic", "hebrew",
    "thai", "korean",
):
    XK.load_keysym_group(_group)


class UnknownKey(ValueError):
    """
    A key name that is neither a known alias nor an X keysym.

    @ivar name: the name as the client sent it.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# Lower-cased alias -> keysym name.
_ALIASES: dict[str, str] = {
    # modifiers
    "ctrl": "Control_L", "control": "Control_L", "ctl": "Control_L",
    "lctrl": "Control_L", "rctrl": "Control_R",
    "control_l": "Control_L", "control_r": "Control_R",
    "shift": "Shift_L", "lshift": "Shift_L", "rshift": "Shift_R",
    "shift_l": "Shift_L", "shift_r": "Shift_R",
    "alt": "Alt_L", "option": "Alt_L", "opt": "Alt_L", "lalt": "Alt_L",
    "ralt": "Alt_R", "alt_l": "Alt_L", "alt_r": "Alt_R", "altgr": "ISO_Level3_Shift",
    "cmd": "Super_L", "command": "Super_L", "super": "Super_L", "meta": "Super_L",
    "win": "Super_L", "windows": "Super_L", "super_l": "Super_L",
    "super_r": "Super_R", "meta_l": "Meta_L", "meta_r": "Meta_R",
    # editing and navigation
    "enter": "Return", "return": "Return", "ret": "Return",
    "kp_enter": "KP_Enter",
    "esc": "Escape", "escape": "Escape",
    "tab": "Tab", "space": "space", "spacebar": "space",
    "backspace": "BackSpace", "back_space": "BackSpace", "bksp": "BackSpace",
    "delete": "Delete", "del": "Delete", "insert": "Insert", "ins": "Insert",
    "home": "Home", "end": "End",
    "pageup": "Prior", "page_up": "Prior", "pgup": "Prior", "prior": "Prior",
    "pagedown": "Next", "page_down": "Next", "pgdn": "Next", "next": "Next",
    "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "arrowup": "Up", "arrowdown": "Down", "arrowleft": "Left", "arrowright": "Right",
    "arrow_up": "Up", "arrow_down": "Down", "arrow_left": "Left", "arrow_right": "Right",
    "capslock": "Caps_Lock", "caps_lock": "Caps_Lock", "caps": "Caps_Lock",
    "numlock": "Num_Lock", "num_lock": "Num_Lock",
    "scrolllock": "Scroll_Lock", "scroll_lock": "Scroll_Lock",
    "printscreen": "Print", "print": "Print", "prtsc": "Print",
    "pause": "Pause", "break": "Break", "menu": "Menu", "apps": "Menu",
    # punctuation spelled out
    "plus": "plus", "minus": "minus", "equal": "equal", "equals": "equal",
    "comma": "comma", "period": "period", "dot": "period", "slash": "slash",
    "backslash": "backslash", "semicolon": "semicolon", "apostrophe": "apostrophe",
    "quote": "apostrophe", "grave": "grave", "backtick": "grave",
    "bracketleft": "bracketleft", "bracketright": "bracketright",
    # media
    "volumeup": "XF86AudioRaiseVolume", "volumedown": "XF86AudioLowerVolume",
    "mute": "XF86AudioMute",
    # Playwright's names, as Gemini's computer-use reference implementation
    # maps the model's keys (numeric keypad operators; ControlOrMeta)
    "multiply": "KP_Multiply", "add": "KP_Add", "subtract": "KP_Subtract",
    "decimal": "KP_Decimal", "divide": "KP_Divide", "separator": "KP_Separator",
    "controlormeta": "Control_L",
}
for _n in range(1, 25):
    _ALIASES[f"f{_n}"] = f"F{_n}"

# Single characters that are not their own keysym name.
_CHARACTERS: dict[str, str] = {
    "+": "plus", "-": "minus", "=": "equal", ",": "comma", ".": "period",
    "/": "slash", "\\": "backslash", ";": "semicolon", "'": "apostrophe",
    "`": "grave", "[": "bracketleft", "]": "bracketright", " ": "space",
    "!": "exclam", "@": "at", "#": "numbersign", "$": "dollar",
    "%": "percent", "^": "asciicircum", "&": "ampersand", "*": "asterisk",
    "(": "parenleft", ")": "parenright", "_": "underscore", "{": "braceleft",
    "}": "braceright", "|": "bar", ":": "colon", '"': "quotedbl",
    "<": "less", ">": "greater", "?": "question", "~": "asciitilde",
    "\t": "Tab", "\n": "Return",
}


def keysymForCharacter(ch: str) -> int:
    """The X keysym that types the single character CH."""
    cp = ord(ch)
    if ch == "\n" or ch == "\r":
        return XK.string_to_keysym("Return")
    if ch == "\t":
        return XK.string_to_keysym("Tab")
    if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF:
        return cp
    return 0x01000000 + cp


@functools.cache
def _foldedKeysyms() -> dict[str, str]:
    """
    Every X keysym name by its lower-case spelling, so that key names are
    case-insensitive (C{PAGE_UP}, C{kp_0}, C{xf86audioplay}).  Of names
    that differ only in case (C{Aacute}, C{aacute}) the one with fewer
    capitals wins: the unshifted key, as for single letters.
    """
    spellings: dict[str, list[str]] = {}
    for attribute in dir(XK):
        if not attribute.startswith("XK_"):
            continue
        name = attribute[3:]
        if name.startswith("XF86_"):
            name = "XF86" + name[5:]  # xdotool's spelling
        spellings.setdefault(name.lower(), []).append(name)
    return {
        lower: min(names, key=lambda n: (sum(c.isupper() for c in n), n))
        for lower, names in spellings.items()
    }


def normalizeKey(name: str) -> str:
    """
    Normalize one key name (one element of a ``+`` combination) to an X
    keysym name.

    @raise UnknownKey: if NAME names no key.
    """
    if len(name) == 1:
        if name in _CHARACTERS:
            return _CHARACTERS[name]
        if "A" <= name <= "Z":
            # A single upper-case letter means the letter key, not shift+it.
            return name.lower()
        if name.isalnum() and name.isascii():
            return name
        if name.isprintable():
            return f"U{ord(name):04X}"
        raise UnknownKey(name)
    alias = _ALIASES.get(name.lower())
    if alias is not None:
        return alias
    if XK.string_to_keysym(name) != XK.NoSymbol:
        return name
    if name.startswith("XF86") and XK.string_to_keysym(
        "XF86_" + name[4:].lstrip("_")
    ) != XK.NoSymbol:
        return name
    folded = _foldedKeysyms().get(name.lower())
    if folded is not None:
        return folded
    # xdotool also takes Unicode keysyms spelled U+hex, e.g. U20AC.
    if name[:1] in "uU" and 2 <= len(name) <= 7:
        try:
            cp = int(name[1:], 16)
        except ValueError:
            pass
        else:
            if 0x20 <= cp <= 0x10FFFF:
                return f"U{cp:04X}"
    raise UnknownKey(name)


def parseCombo(combo: str) -> list[str]:
    """
    Parse one combination such as ``ctrl+shift+t`` into keysym names, in
    press order.

    @raise UnknownKey: if an element names no key, or the combination is
        empty.
    """
    if combo in ("+", "-"):
        return [normalizeKey(combo)]
    parts = combo.split("+")
    # "ctrl++" means ctrl and the plus key.
    if combo.endswith("++"):
        parts = parts[:-2] + ["+"]
    if any(p == "" for p in parts):
        raise UnknownKey(combo)
    return [normalizeKey(p) for p in parts]


def parseKeys(text: str) -> list[list[str]]:
    """
    Parse TEXT (combinations separated by white space, e.g.
    ``"ctrl+a Delete"``) into a list of combinations.

    @raise UnknownKey: for the first name that names no key.
    """
    if text.strip() == "":
        if text == "":
            raise UnknownKey(text)
        return [[normalizeKey(text[0])]]
    return [parseCombo(c) for c in text.split()]
