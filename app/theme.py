"""The dark look: a Fusion palette, one style sheet, and a colour per stem."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = "#16181d"
PANEL = "#1f2229"
PANEL_LIGHT = "#2a2e37"
BORDER = "#343945"
TEXT = "#d8dce4"
TEXT_DIM = "#8a91a0"
ACCENT = "#4fb3ff"
WARNING = "#e0a030"
ERROR = "#e05555"
PLAYHEAD = "#ffffff"
MIX_COLOUR = "#b8c2d6"

STEM_COLOURS = {
    "vocals": "#ff6b8b",
    "drums": "#ffb347",
    "bass": "#6c8cff",
    "guitar": "#7bd88f",
    "piano": "#c792ea",
    "other": "#4dd0e1",
    "strings": "#f0e06b",
    "synth": "#ff8a65",
}
_FALLBACK = ["#ff6b8b", "#ffb347", "#6c8cff", "#7bd88f", "#c792ea", "#4dd0e1", "#f0e06b", "#ff8a65"]


def stem_colour(name: str, index: int) -> str:
    return STEM_COLOURS.get(name.lower(), _FALLBACK[index % len(_FALLBACK)])


STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid {BORDER};
    spacing: 4px; padding: 3px; }}
QToolBar QToolButton {{ padding: 4px 8px; border-radius: 4px; }}
QToolBar QToolButton:hover {{ background: {PANEL_LIGHT}; }}
QToolBar QToolButton:checked {{ background: #2d4a63; }}
QToolBar QToolButton:disabled {{ color: #5a6070; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {TEXT_DIM}; }}
QMenuBar {{ background: {PANEL}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: #2d4a63; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QFrame#TrackHeader {{ background: {PANEL}; border: none; border-bottom: 1px solid {BORDER}; }}
QFrame#MasterHeader {{ background: #23262e; border: none; border-bottom: 2px solid {BORDER}; }}
QLabel#StemName {{ font-weight: bold; font-size: 11pt; }}
QLabel#Dim {{ color: {TEXT_DIM}; font-size: 9pt; }}
QLabel#Value {{ color: {TEXT}; font-size: 9pt; font-family: monospace; }}
QLabel#Clock {{ font-family: monospace; font-size: 13pt; color: {TEXT};
    padding: 0 10px; }}
QPushButton {{ background: {PANEL_LIGHT}; border: 1px solid {BORDER}; border-radius: 4px;
    padding: 3px 10px; }}
QPushButton:hover {{ border-color: {ACCENT}; }}
QPushButton:disabled {{ color: #5a6070; }}
QPushButton#Mute:checked {{ background: #c0392b; color: white; border-color: #e74c3c; }}
QPushButton#Solo:checked {{ background: #d4a017; color: black; border-color: #f1c40f; }}
QPushButton#AB:checked {{ background: #8e44ad; color: white; }}
QPushButton#Listen {{ padding: 2px 6px; }}
QPushButton#Listen:checked {{ background: #2d4a63; color: white; border-color: {ACCENT}; }}
QPushButton#Big {{ font-size: 12pt; padding: 8px 18px; background: #2d4a63; border-color: {ACCENT}; }}
QPushButton#Mute, QPushButton#Solo, QPushButton#AB {{ padding: 2px 0px; font-weight: bold; }}
QSlider::groove:horizontal {{ height: 4px; background: #3a3f4b; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: #5a7a99; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {TEXT}; width: 10px; margin: -5px 0; border-radius: 5px; }}
QSlider::handle:horizontal:disabled {{ background: #5a6070; }}
QSlider::sub-page:horizontal:disabled {{ background: #3a3f4b; }}
QCheckBox {{ spacing: 4px; }}
QDoubleSpinBox, QSpinBox, QComboBox {{ background: {PANEL_LIGHT}; border: 1px solid {BORDER};
    border-radius: 3px;
    padding: 1px 3px; }}
QProgressBar {{ background: {PANEL_LIGHT}; border: 1px solid {BORDER}; border-radius: 3px; text-align: center;
    height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QScrollArea {{ border: none; background: {BACKGROUND}; }}
QListWidget {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 4px; margin-top: 8px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; color: {TEXT_DIM}; }}
QToolTip {{ background: {PANEL_LIGHT}; color: {TEXT}; border: 1px solid {BORDER}; }}
QFrame#MessageBar {{ border: none; border-bottom: 1px solid {BORDER}; }}
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: PANEL,
        QPalette.ColorRole.AlternateBase: PANEL_LIGHT,
        QPalette.ColorRole.ToolTipBase: PANEL_LIGHT,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL_LIGHT,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: "#2d6da3",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5a6070"))
    app.setPalette(pal)
    app.setStyleSheet(STYLE_SHEET)
