"""Progress for long work: a tqdm bar on a terminal, a short summary line now and then everywhere else.

Under CI (no TTY) tqdm redraws by carriage return, and every redraw becomes a log line: one gate run wrote
5,800 of them. Off a terminal this prints one line per ``every_fraction`` of the work or per ``every_seconds``,
whichever comes first, and a last line with the total time.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class SummaryLines:
    """A tqdm stand-in for logs: ``update``/``set_postfix``/``close`` print a line now and then."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        *,
        stream: TextIO | None = None,
        every_fraction: float = 0.1,
        every_seconds: float = 30.0,
        clock=time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit = max(int(total), 0), desc, unit
        self.n = 0
        self.postfix = ""
        self._stream = stream
        self._clock = clock
        self._start = self._last_time = clock()
        self._step = max(1, int(self.total * every_fraction)) if self.total else 1
        self._next = self._step
        self._every_seconds = every_seconds
        self._closed = False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def _line(self, final: bool = False) -> None:
        elapsed = self._clock() - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        end = " done" if final else ""
        post = f" {self.postfix}" if self.postfix else ""
        speed = f"{rate:.3g} {self.unit}/s"
        print(
            f"{self.desc}: {self.n}/{self.total} {self.unit}{pct}, {elapsed:.0f} s, {speed}{post}{end}",
            file=self.stream,
            flush=True,
        )

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        if self.total and self.n >= self.total:
            return  # the work is done: close() prints the one last line (with " done"), not a 100 % line before it
        if self.n >= self._next or now - self._last_time >= self._every_seconds:
            self._line()
            self._last_time = now
            while self._next <= self.n:
                self._next += self._step

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._line(final=True)

    def __enter__(self) -> SummaryLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress(total: int, desc: str, unit: str = "it", *, enabled: bool = True, stream: TextIO | None = None):
    """A progress reporter: tqdm on a TTY, :class:`SummaryLines` off one, nothing when ``enabled`` is False."""
    if not enabled:
        return _Silent()
    out = stream or sys.stderr
    if getattr(out, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=out)
    return SummaryLines(total, desc, unit, stream=out)
