"""Domain exceptions of the training package (data generation, rendering, data sets)."""

from __future__ import annotations

from engine.errors import StemLabError


class DataGenerationError(StemLabError):
    """Generated data cannot be made: a missing synthesizer or SoundFont, a failed render, a bad option."""


class DatasetError(StemLabError):
    """A data set folder is missing, incomplete, or does not match what the reader expects."""


class TrainingError(StemLabError):
    """A training run cannot start or continue: a bad config, a missing data set, a corrupt checkpoint."""
