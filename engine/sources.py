"""The stems StemLab separates a song into (kept apart from the network so naming them needs no torch)."""

DEFAULT_SOURCES: tuple[str, ...] = ("vocals", "drums", "bass", "guitar", "piano", "other")
