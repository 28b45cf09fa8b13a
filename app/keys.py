"""Keys the window cannot leave to QShortcut: Shift+digit (mute stem n) read from the physical key,
and the arrow keys a focused slider or spin box keeps for itself.

Shift+1 reaches Qt as "!" on a US layout, "§"-row symbols elsewhere and plain "1" on AZERTY; on X11
a QShortcut for "Shift+1" and one for "!" both match the same press, so Qt calls it ambiguous and
fires neither. The digit is therefore read from the key itself (its scan code or virtual key).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QWidget

# xkb keycodes (evdev code + 8) of the top-row keys 1..9: X11 and Wayland on any PC keyboard.
XKB_DIGIT_KEYCODES = {10 + i: i + 1 for i in range(9)}
# Windows virtual keys VK_1..VK_9 name the top-row keys whatever the layout prints on them.
WINDOWS_DIGIT_VKS = {0x31 + i: i + 1 for i in range(9)}
# macOS kVK_ANSI_1..9 (positions, not characters).
MAC_DIGIT_KEYCODES = {0x12: 1, 0x13: 2, 0x14: 3, 0x15: 4, 0x17: 5, 0x16: 6, 0x1A: 7, 0x1C: 8, 0x19: 9}
# Only when the platform gives no native key (synthesised events): a US layout's Shift+1..9.
US_SHIFTED_DIGITS = {sym: i + 1 for i, sym in enumerate("!@#$%^&*(")}

_OTHER_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier
)


def _native_digit(event: QKeyEvent, platform: str) -> Optional[int]:
    """The top-row digit of the physical key; None when it is another key; 0 when the platform told
    nothing about the key (a synthesised event, an unknown platform)."""
    if platform == "xcb" or platform.startswith("wayland"):
        code = event.nativeScanCode()
        return XKB_DIGIT_KEYCODES.get(code) if code else 0
    if platform == "windows":
        vk = event.nativeVirtualKey()
        return WINDOWS_DIGIT_VKS.get(vk) if vk else 0
    if platform == "cocoa":
        # kVK_ANSI_A is 0, so a zero virtual key is real there: trust it only with a scan code or text
        if event.nativeVirtualKey() or event.nativeScanCode():
            return MAC_DIGIT_KEYCODES.get(event.nativeVirtualKey())
        return 0
    return 0


def shift_digit(event: QKeyEvent, platform: str) -> Optional[int]:
    """n in 1..9 when the event is Shift plus the top-row key n (any layout), else None."""
    mods = event.modifiers()
    if not mods & Qt.KeyboardModifier.ShiftModifier or mods & _OTHER_MODIFIERS:
        return None
    if mods & Qt.KeyboardModifier.KeypadModifier:
        return None  # Shift on the keypad is navigation, not a digit
    native = _native_digit(event, platform)
    if native != 0:
        return native  # the key is known: a digit key or definitely another one
    key = event.key()
    if Qt.Key.Key_1.value <= key <= Qt.Key.Key_9.value:
        return key - Qt.Key.Key_0.value
    return US_SHIFTED_DIGITS.get(event.text())


NAVIGATION_KEYS = frozenset(
    k.value
    for k in (
        Qt.Key.Key_Left,
        Qt.Key.Key_Right,
        Qt.Key.Key_Up,
        Qt.Key.Key_Down,
        Qt.Key.Key_PageUp,
        Qt.Key.Key_PageDown,
    )
)


class KeepNavigationKeys(QObject):
    """Event filter for a slider or spin box: while it has focus, it keeps the arrow and page keys.

    Qt offers every key press to the window's shortcuts first unless the focused widget accepts the
    ShortcutOverride event; sliders do not, so the window's Left/Right (seek) took their arrows.
    """

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's spelling)
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            extra = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if event.key() in NAVIGATION_KEYS and extra == Qt.KeyboardModifier.NoModifier:
                event.accept()  # deliver it as a key press to the widget, not to a shortcut
                return True
        return False


def keep_navigation_keys(*widgets: QWidget) -> None:
    """Let each focused widget keep its arrow keys (see KeepNavigationKeys)."""
    for w in widgets:
        w.installEventFilter(KeepNavigationKeys(w))
