"""Progress of long work on stderr: a tqdm bar on a terminal, nothing otherwise.

A job announces each stage as it starts (``stages("verify: numeric")``); the bar
shows the stage and the stages done.  Silent when stderr is not a terminal, or
when the caller asks (``--json`` output stays clean).
"""

from __future__ import annotations

import sys


class Stages:
    """A callable that marks the start of each stage of a job."""

    def __init__(self, total: int, enabled: bool | None = None, desc: str = "symbackprop"):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                             bar_format="{desc} ({n_fmt}/{total_fmt} stages done, {elapsed})")
        self._desc = desc
        self._started = False

    def __call__(self, stage: str) -> None:
        if self._bar is None:
            return
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_description_str(f"{self._desc}: {stage}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
