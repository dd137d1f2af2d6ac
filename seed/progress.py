"""A one-line progress report on stderr: rows, rows/s and errors so far, at most 5 a second."""

import sys
import time
from typing import TextIO

REFRESH_SECONDS = 0.2
# Without a terminal, each report is a line of its own, so they come less often.
LOG_REFRESH_SECONDS = 5.0


class ProgressLine:
    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "rows") -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.count = 0
        self.errors: int | None = None  # None: not known yet (the API reports them at the end)
        self.width = 0

    def update(self, count: int, errors: int | None = None) -> None:
        self.count = count
        if errors is not None:
            self.errors = errors
        now = time.monotonic()
        interval = REFRESH_SECONDS if self.interactive else LOG_REFRESH_SECONDS
        if now - self.shown_at >= interval:
            self.shown_at = now
            self._show(final=False)

    def finish(self) -> None:
        self._show(final=True)

    def text(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.count / elapsed
        errors = "" if self.errors is None else f", {self.errors:,} errors"
        return (
            f"{self.label}: {self.count:,} {self.unit}, {rate:,.0f} {self.unit}/s{errors}, "
            f"{elapsed:.1f} s"
        )

    def _show(self, *, final: bool) -> None:
        text = self.text()
        if self.interactive:
            padding = " " * max(0, self.width - len(text))
            self.width = len(text)
            self.stream.write(f"\r{text}{padding}" + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
