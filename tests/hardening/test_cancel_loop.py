"""Cancel and repeat: 50 separations started and cancelled at random points in a row, then one run to
completion, in the app: no crash, no dialog, no thread left, memory back near where it started."""

from __future__ import annotations

import ctypes
import gc
import random
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import soundfile as sf

from bench.common import rss_mb
from tests.conftest import SR, tone_mix

WAIT = 60000
RUNS = 50
RSS_BOUND_MB = 60.0  # one separation of this song holds about 40 MB (stems and ungated stems)


def settle(qtbot: Any, w: Any) -> None:
    qtbot.waitUntil(lambda: w._sep_worker is None and w.runner.running_threads() == 0 and not w.runner.active,
                    timeout=WAIT)
    w.runner.wait(WAIT)
    gc.collect()
    trim_heap()


def trim_heap() -> None:
    """Hand freed heap back to the system (glibc keeps it otherwise), so RSS counts what is still held:
    the earlier tests' heap layout must not decide whether a leak shows."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def test_fifty_cancels_then_a_full_run(qtbot: Any, window: Any, tmp_path: Path, dialogs: list) -> None:
    w = window
    path = tmp_path / "twenty seconds.wav"
    sf.write(path, tone_mix(20.0).T, SR)
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT):
        w.open_path(str(path))
    w.separator.chunk_samples //= 4  # about 3 s chunks: a cancel can land between any two of them
    # warm up: one full run (the pool's threads, torch's allocations), then measure
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    settle(qtbot, w)
    kept = w.result
    threads0, rss0 = threading.active_count(), rss_mb()
    rng = random.Random(5)
    outcomes = {"cancelled": 0, "finished": 0}
    w.separation_cancelled.connect(lambda: outcomes.__setitem__("cancelled", outcomes["cancelled"] + 1))
    w.separation_finished.connect(lambda _: outcomes.__setitem__("finished", outcomes["finished"] + 1))
    workers: list[weakref.ref] = []
    t0 = time.perf_counter()
    for k in range(RUNS):
        how = rng.choice(["at once", "after progress", "after a delay"])
        w.separate()
        worker = w._sep_worker
        assert worker is not None
        workers.append(weakref.ref(worker))
        if how == "after progress":
            reports = rng.randint(1, 8)
            seen = [0]

            def on_progress(_: Any, seen: list = seen, reports: int = reports) -> None:
                seen[0] += 1
                if seen[0] >= reports:
                    w.cancel_work()

            worker.signals.progress.connect(on_progress)
        elif how == "after a delay":
            qtbot.wait(rng.randint(0, 400))
            w.cancel_work()
        else:
            w.cancel_work()
        qtbot.waitUntil(lambda: w._sep_worker is None, timeout=WAIT)
        assert not w.act_cancel.isEnabled() or w._busy_worker is not None
        assert w.act_separate.isEnabled() and not w.progress.isVisible(), k
        del worker
    loop_s = time.perf_counter() - t0
    settle(qtbot, w)
    # every finished job is let go (the thread pool used to keep each one it ever ran)
    assert sum(ref() is not None for ref in workers) == 0
    assert outcomes["cancelled"] + outcomes["finished"] == RUNS
    assert outcomes["cancelled"] >= RUNS * 0.8, outcomes  # most landed mid-way
    if outcomes["finished"] == 0:
        assert w.result is kept  # a cancelled separation changes nothing
    threads1, rss1 = threading.active_count(), rss_mb()
    # one run to completion afterwards
    with qtbot.waitSignal(w.separation_finished, timeout=WAIT):
        w.separate()
    settle(qtbot, w)
    assert w.result is not kept and w.result.stems.shape == (6, 2, 20 * SR)
    del kept
    gc.collect()
    trim_heap()
    threads2, rss2 = threading.active_count(), rss_mb()
    assert dialogs == []
    assert w.runner.pool.activeThreadCount() == 0 and not w.runner.active
    assert threads1 <= threads0 and threads2 <= threads0, (threads0, threads1, threads2)
    assert rss1 - rss0 < RSS_BOUND_MB and rss2 - rss0 < RSS_BOUND_MB, (rss0, rss1, rss2)
    print(f"\n{RUNS} runs in {loop_s:.1f} s: {outcomes}; threads {threads0} -> {threads1} -> {threads2}; "
          f"RSS {rss0:.0f} -> {rss1:.0f} -> {rss2:.0f} MB")
