"""The export dialog: which stems, the remix, WAV or FLAC, 16/24-bit or float, and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.audio import SUBTYPES
from engine.export import ACTIVITY_CSV, BEATS_CSV, SEPARATION_JSON

from .settings import Settings


@dataclass
class ExportChoice:
    folder: Path
    stems: list[str]
    fmt: str  # "wav" | "flac"
    subtype: str  # PCM_16 | PCM_24 | FLOAT
    remix: bool
    song_stem: str

    def paths(self, beats: bool = False) -> list[Path]:
        """Every file the export will write (to ask before replacing any); beats: the song's tempo and
        beats are known, so the stems come with beats.csv."""
        out = [self.folder / f"{s}.{self.fmt}" for s in self.stems]
        if self.stems:
            out += [self.folder / ACTIVITY_CSV, self.folder / SEPARATION_JSON]
            if beats:
                out.append(self.folder / BEATS_CSV)
        if self.remix:
            out.append(self.folder / f"{self.song_stem} (remix).{self.fmt}")
        return out


class ExportDialog(QDialog):
    def __init__(
        self, parent: Optional[QWidget], sources: list[str], song_path: Path, settings: Settings
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export stems")
        self.settings = settings
        self.song_path = song_path
        lay = QVBoxLayout(self)
        stems_box = QGroupBox("Stems")
        grid = QGridLayout(stems_box)
        self.stem_boxes: dict[str, QCheckBox] = {}
        for i, s in enumerate(sources):
            cb = QCheckBox(s.capitalize())
            cb.setChecked(True)
            self.stem_boxes[s] = cb
            grid.addWidget(cb, i // 3, i % 3)
        self.remix = QCheckBox("The remix, as the mixer is set (gains, pan, mute, solo, master)")
        self.remix.setChecked(bool(settings.get("export/remix")))
        grid.addWidget(self.remix, (len(sources) + 2) // 3, 0, 1, 3)
        lay.addWidget(stems_box)
        form = QFormLayout()
        self.format = QComboBox()
        self.format.addItems(["WAV", "FLAC"])
        self.format.setCurrentText(str(settings.get("export/format")).upper())
        self.bits = QComboBox()
        self.format.currentTextChanged.connect(self._on_format)
        form.addRow("Format", self.format)
        form.addRow("Samples", self.bits)
        self._on_format(self.format.currentText())
        want = str(settings.get("export/bits"))
        idx = self.bits.findData(want)
        if idx >= 0:
            self.bits.setCurrentIndex(idx)
        folder_row = QHBoxLayout()
        default = str(settings.get("export/folder")) or str(song_path.parent)
        self.folder = QLineEdit(str(Path(default) / f"{song_path.stem} stems"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        form.addRow("Folder", folder_row)
        lay.addLayout(form)
        note = QLabel(
            "Files keep the song's own sample rate. Each file is written to a temporary name first, "
            "so a failed export never leaves a half-written file."
        )
        note.setObjectName("Dim")
        note.setWordWrap(True)
        lay.addWidget(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(560, 0)

    def _on_format(self, fmt: str) -> None:
        current = self.bits.currentData()
        self.bits.clear()
        self.bits.addItem("16-bit", "16")
        self.bits.addItem("24-bit", "24")
        if fmt.upper() == "WAV":
            self.bits.addItem("32-bit float", "float")
        idx = self.bits.findData(current)
        self.bits.setCurrentIndex(idx if idx >= 0 else 1)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _accept(self) -> None:
        c = self.choice()
        if not c.stems and not c.remix:
            self.folder.setFocus()
            return
        self.settings.set("export/format", c.fmt)
        self.settings.set("export/bits", str(self.bits.currentData()))
        self.settings.set("export/folder", str(c.folder.parent))
        self.settings.set("export/remix", c.remix)
        self.accept()

    def choice(self) -> ExportChoice:
        return ExportChoice(
            folder=Path(self.folder.text()).expanduser(),
            stems=[s for s, cb in self.stem_boxes.items() if cb.isChecked()],
            fmt=self.format.currentText().lower(),
            subtype=SUBTYPES[str(self.bits.currentData())],
            remix=self.remix.isChecked(),
            song_stem=self.song_path.stem,
        )
