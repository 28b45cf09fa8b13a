"""The music analysis (engine.music, librosa) in a process of its own, so it never holds the window's GIL.

librosa compiles its beat tracker with numba when first used; that compilation holds the GIL in
stretches of 50-150 ms, which froze the window when it ran in a worker thread. In a child process the
GUI process never imports librosa at all. One child serves the whole session (started in the
background as the window opens, so the first song finds it compiled), and jobs go to it one at a time
over a pipe: the samples as raw bytes (no pickled copy), the answer as a pickled MusicInfo.

A job that is cancelled returns at once (SeparationCancelled); the child finishes it and its answer is
thrown away when the next job reads the pipe, or, for a long song, the child is replaced. No Qt here; the caller runs `analyse` in a worker thread.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
from typing import Any, Optional

import numpy as np

from .errors import MusicAnalysisError

POLL_S = 0.05  # how often a waiting job looks at its cancel event
# A job cancelled on a song longer than this is not left to finish (a 10-minute song keeps the child busy
# for 7-10 s): the child is replaced, which costs about 3.5 s of compiling before the next job.
RESTART_AFTER_S = 180.0


def _child(conn: Any) -> None:
    """The child's loop: ("analyse", id, sample_rate) then the mono samples' bytes -> (id, MusicInfo)."""
    from engine.music import analyse

    analyse(np.random.default_rng(0).standard_normal(4 * 22050).astype(np.float32) * 0.1, 22050)  # compile
    # A closed pipe, on any send or receive, means the app has gone (or stopped this child): end quietly.
    try:
        conn.send(("ready", 0, None))
        while True:
            msg = conn.recv()
            if msg is None:
                return
            _, job, sample_rate = msg
            data = conn.recv_bytes()
            try:
                reply = ("done", job, analyse(np.frombuffer(data, dtype=np.float32), int(sample_rate)))
            except Exception as exc:  # noqa: BLE001 (any failure becomes one message for the user, not a dead child)
                reply = ("error", job, f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    except (EOFError, OSError):  # BrokenPipeError is an OSError
        return


class MusicProcess:
    """A child process that runs engine.music.analyse; `analyse` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one job on the pipe at a time
        self._proc: Any = None
        self._conn: Any = None
        self._ready = False
        self._ids = itertools.count(1)

    def start(self) -> None:
        """Start the child (it compiles librosa's beat tracker first); returns at once."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        # spawn: never fork a process that runs Qt and threads. The child imports the parent's main
        # module as multiprocessing does, so a script starting the app keeps `if __name__ == "__main__"`.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_child, args=(child,), name="stemlab-music", daemon=True)
        try:
            proc.start()
        except (OSError, RuntimeError) as exc:
            parent.close()
            raise MusicAnalysisError(f"The tempo and key analysis cannot start its process ({exc}).") from exc
        finally:
            child.close()
        self._proc, self._conn, self._ready = proc, parent, False

    def analyse(self, mono: np.ndarray, sample_rate: int, cancel: Optional[threading.Event] = None) -> Any:
        """engine.music.analyse of mono (n,) float32 samples, in the child; MusicInfo."""
        from engine.errors import SeparationCancelled

        x = np.ascontiguousarray(mono, dtype=np.float32)
        with self._lock:
            self._start_locked()
            job = next(self._ids)
            try:
                self._conn.send(("analyse", job, int(sample_rate)))
                self._conn.send_bytes(memoryview(x).cast("B"))
                while True:
                    if cancel is not None and cancel.is_set():
                        if x.size / max(int(sample_rate), 1) > RESTART_AFTER_S:
                            self._stop_locked()
                            self._start_locked()
                        raise SeparationCancelled("Cancelled.")
                    if not self._conn.poll(POLL_S):
                        continue
                    kind, got, value = self._conn.recv()
                    if kind == "ready":
                        self._ready = True
                    elif got == job:
                        if kind == "error":
                            raise MusicAnalysisError(f"The tempo and key analysis failed: {value}")
                        return value
                    # else: the answer to a job that was cancelled; dropped
            except (EOFError, OSError, BrokenPipeError) as exc:
                self._stop_locked()
                raise MusicAnalysisError(
                    "The tempo and key analysis stopped unexpectedly (out of memory?); it will be tried again "
                    "with the next song."
                ) from exc

    def wait_ready(self, cancel: Optional[threading.Event] = None) -> bool:
        """Wait until the child has compiled its analysis (True), or cancel was set (False)."""
        with self._lock:
            self._start_locked()
            while not self._ready:
                if cancel is not None and cancel.is_set():
                    return False
                try:
                    if self._conn.poll(POLL_S):
                        kind, _, _ = self._conn.recv()
                        self._ready = self._ready or kind == "ready"
                except (EOFError, OSError):
                    self._stop_locked()
                    return False
            return True

    def _stop_locked(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc, self._conn, self._ready = None, None, False
        if conn is not None:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            conn.close()
        if proc is not None:
            proc.join(0.5)
            if proc.is_alive():
                proc.terminate()  # busy with a 10-minute song: no need to wait for it
                proc.join(2.0)

    def close(self) -> None:
        """Stop the child (at once, even mid-analysis). A later `analyse` starts a new one."""
        # a job waiting on the pipe holds the lock until it is cancelled; the caller cancels first
        with self._lock:
            self._stop_locked()
