"""The keyboard: Shift+digit mutes on any layout, digits solo, and a focused slider or spin box keeps
its arrow keys while Left/Right seek elsewhere (pytest-qt, offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent, QShortcut
from PySide6.QtWidgets import QApplication

from app.keys import shift_digit
from tests.app.test_window import open_song, separate
from tests.conftest import SR, tone_mix

K = Qt.Key
SHIFT = Qt.KeyboardModifier.ShiftModifier


def key_event(
    key: Any,
    mods: Any = SHIFT,
    text: str = "",
    scan: int = 0,
    vk: int = 0,
    kind: QEvent.Type = QEvent.Type.KeyPress,
    repeat: bool = False,
) -> QKeyEvent:
    return QKeyEvent(kind, int(key.value if hasattr(key, "value") else key), mods, scan, vk, 0, text, repeat)


@pytest.mark.parametrize(
    "platform,event,digit",
    [
        # X11 / Wayland report xkb keycodes: the top-row 1 key is 10 whatever it prints
        ("xcb", key_event(K.Key_Exclam, text="!", scan=10, vk=0x21), 1),  # US: Shift+1 is "!"
        ("xcb", key_event(K.Key_1, text="1", scan=10, vk=0x31), 1),  # AZERTY: Shift+& key is "1"
        ("xcb", key_event(K.Key_section, text="§", scan=12, vk=0xA7), 3),  # German: Shift+3 is "§"
        ("xcb", key_event(K.Key_ParenLeft, text="(", scan=18), 9),
        ("xcb", key_event(K.Key_Asterisk, text="*", scan=35), None),  # German Shift+"+": no digit key
        ("wayland", key_event(K.Key_At, text="@", scan=11), 2),
        ("windows", key_event(K.Key_At, text="@", scan=3, vk=0x32), 2),  # VK_2
        ("cocoa", key_event(K.Key_Dollar, text="$", scan=1, vk=0x15), 4),  # kVK_ANSI_4
        # no native key (synthesised events, other platforms): the digit or a US layout's symbol
        ("offscreen", key_event(K.Key_Exclam, text="!"), 1),
        ("offscreen", key_event(K.Key_5, text="5"), 5),
        # not Shift+digit at all
        ("xcb", key_event(K.Key_1, Qt.KeyboardModifier.NoModifier, "1", scan=10), None),
        ("xcb", key_event(K.Key_Exclam, SHIFT | Qt.KeyboardModifier.ControlModifier, scan=10), None),
        ("xcb", key_event(K.Key_End, SHIFT | Qt.KeyboardModifier.KeypadModifier, scan=87), None),
        ("offscreen", key_event(K.Key_0, text="0"), None),
    ],
)
def test_shift_digit_reads_the_physical_key(platform: str, event: QKeyEvent, digit: Any) -> None:
    assert shift_digit(event, platform) == digit


def _x11_stroke(seq: str) -> str:
    """The key stroke a one-key sequence stands for on X11 with a US layout, where Qt matches the
    shifted symbol and Shift+digit to the same press."""
    shifted = dict(zip("!@#$%^&*(", "123456789", strict=True))
    return f"Shift+{shifted[seq]}" if seq in shifted else seq


def test_no_two_shortcuts_claim_one_key_press(window: Any) -> None:
    """Two shortcuts for one press are ambiguous to Qt and neither fires (Shift+1 and "!" on X11)."""
    sequences = [s.key().toString() for s in window.findChildren(QShortcut) if s.isEnabled()]
    for a in window.actions():
        sequences += [k.toString() for k in a.shortcuts()]
    strokes = [_x11_stroke(s) for s in sequences if s]
    assert len(strokes) == len(set(strokes)), sorted(s for s in strokes if strokes.count(s) > 1)
    assert {str(n) for n in range(1, 10)} <= set(strokes)  # the digits still solo


def activate(qtbot: Any, w: Any) -> None:
    w.activateWindow()
    w.raise_()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)


def deliver(target: Any, event_args: dict[str, Any]) -> bool:
    """Deliver a native key press as Qt delivers one from the window system: ShortcutOverride to the
    focused widget, propagating to its parents, then the press, likewise. (QApplication.sendEvent
    of a press would add a second override of its own, without the native key.) Returns whether
    the shortcuts were kept out of it."""
    override = key_event(kind=QEvent.Type.ShortcutOverride, **event_args)
    override.ignore()
    QApplication.sendEvent(target, override)
    press = key_event(**event_args)
    w = target
    while w is not None:
        press.accept()
        if w.event(press) and press.isAccepted():
            break
        w = None if w.isWindow() else w.parentWidget()
    return override.isAccepted()


def test_shift_digit_mutes_on_x11_with_and_without_a_focused_fader(
    qtbot: Any, window: Any, song_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = window
    open_song(qtbot, w, song_file)
    separate(qtbot, w)
    activate(qtbot, w)
    from PySide6.QtGui import QGuiApplication

    monkeypatch.setattr(QGuiApplication, "platformName", staticmethod(lambda: "xcb"))
    us_shift_1 = {"key": K.Key_Exclam, "text": "!", "scan": 10, "vk": 0x21}
    assert deliver(w, us_shift_1)
    assert w.headers[0].mute.isChecked() and w.mixer.strips[0].mute
    slider = w.headers[1].gain.slider
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus, timeout=5000)
    assert deliver(slider, {"key": K.Key_At, "text": "@", "scan": 11, "vk": 0x40})
    assert w.headers[1].mute.isChecked()
    # AZERTY: Shift on the 3 key gives "3"; a held key (auto-repeat) toggles once
    azerty_3 = {"key": K.Key_3, "text": "3", "scan": 12, "vk": 0x33}
    deliver(slider, azerty_3)
    deliver(slider, dict(azerty_3, repeat=True))
    deliver(slider, dict(azerty_3, repeat=True))
    assert w.headers[2].mute.isChecked()
    assert slider.value() == 0  # the fader did not move
    # a focused combo box (the gating mode) does not take it either
    combo = w.master.gating.mode
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=5000)
    assert deliver(combo, {"key": K.Key_Dollar, "text": "$", "scan": 13, "vk": 0x24})
    assert w.headers[3].mute.isChecked() and combo.currentText() == "binary"
    # a focused text field keeps what it is typed, as it keeps plain digits
    spin = w.master.gating.median
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    deliver(spin, {"key": K.Key_Percent, "text": "%", "scan": 14, "vk": 0x25})
    assert not w.headers[4].mute.isChecked()


def test_shift_digit_mutes_and_digits_solo_through_qts_shortcut_path(
    qtbot: Any, window: Any, song_file: Path
) -> None:
    w = window
    open_song(qtbot, w, song_file)
    separate(qtbot, w)
    activate(qtbot, w)
    qtbot.keyClick(w, K.Key_Exclam, SHIFT)
    assert w.headers[0].mute.isChecked()
    qtbot.keyClick(w, K.Key_4, SHIFT)
    assert w.headers[3].mute.isChecked()
    qtbot.keyClick(w, K.Key_Exclam, SHIFT)
    assert not w.headers[0].mute.isChecked()
    qtbot.keyClick(w, K.Key_2)
    assert w.headers[1].solo.isChecked() and not w.headers[1].mute.isChecked()
    assert not w.headers[0].solo.isChecked()
    combo = w.master.gating.mode
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=5000)
    qtbot.keyClick(combo, K.Key_ParenLeft, SHIFT)  # no 9th stem: nothing happens, nothing breaks
    qtbot.keyClick(combo, K.Key_At, SHIFT)
    qtbot.keyClick(combo, K.Key_3)
    assert w.headers[1].mute.isChecked() and w.headers[2].solo.isChecked()


def test_a_focused_fader_or_spin_box_keeps_its_arrow_keys(qtbot: Any, window: Any, tmp_path: Path) -> None:
    w = window
    path = tmp_path / "long.wav"
    sf.write(path, tone_mix(20.0).T, SR)
    open_song(qtbot, w, path)
    separate(qtbot, w)
    activate(qtbot, w)
    w.seek(10.0)
    fader = w.headers[0].gain.slider
    fader.setFocus()
    qtbot.waitUntil(fader.hasFocus, timeout=5000)
    qtbot.keyClick(fader, K.Key_Right)
    qtbot.keyClick(fader, K.Key_Right)
    assert w.headers[0].gain.db == 1.0  # two half-dB steps
    qtbot.keyClick(fader, K.Key_Left)
    assert w.headers[0].gain.db == 0.5
    assert w.mixer.position == 10 * SR  # the song did not seek
    pan = w.headers[1].pan
    pan.setFocus()
    qtbot.waitUntil(pan.hasFocus, timeout=5000)
    qtbot.keyClick(pan, K.Key_Left)
    assert pan.value() == -1 and w.mixer.position == 10 * SR
    spin = w.master.gating.median
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    before = spin.value()
    qtbot.keyClick(spin, K.Key_Up)
    assert spin.value() == before + spin.singleStep()
    qtbot.keyClick(spin, K.Key_Right)
    qtbot.keyClick(spin, K.Key_Left)
    assert w.mixer.position == 10 * SR
    # no slider or spin box focused (a plot is): Left and Right seek 5 s
    w.overview_glw.setFocus()
    qtbot.waitUntil(w.overview_glw.hasFocus, timeout=5000)
    qtbot.keyClick(w.overview_glw, K.Key_Right)
    assert w.mixer.position == 15 * SR
    qtbot.keyClick(w.overview_glw, K.Key_Left)
    qtbot.keyClick(w.overview_glw, K.Key_Left)
    assert w.mixer.position == 5 * SR
    assert w.headers[0].gain.db == 0.5
    qtbot.waitUntil(lambda: not w.regates.busy, timeout=60000)
