"""The app fixtures (isolated settings, recorded dialogs, no sound card, a window on the tiny model,
no thread left behind) for the hardening tests too."""

from tests.app.conftest import (  # noqa: F401 - fixtures are found by name
    dialogs,
    make_window,
    no_sound,
    no_thread_left_behind,
    settings,
    window,
)
