"""Progress bars for long work: tqdm (its notebook widget under Jupyter), shown only when
somebody watches (a terminal or a notebook), with ``progress=False`` to turn them off.

Attack loops count their iterations with :func:`steps`; :class:`Progress` is the bar, made
current with :meth:`Progress.activate` by whoever owns the work (an attack call, ``evaluate``).
One unit of the bar is one unit of the owner's work (an attack run on one chunk for one
epsilon); a loop inside it advances the bar by its share per iteration, and a loop nested in
that loop splits its parent iteration's share, so nested loops (C&W's binary search around its
optimizer steps) give a smooth bar and an ETA without the attack declaring anything. A loop that
stops early (early abort) leaves its share to :meth:`Progress.end_unit`. Counting is Python
arithmetic per iteration: no tensor is read, no host sync.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
_FORMAT_OPEN = "{desc}: {elapsed}"
_active: ContextVar[Progress | None] = ContextVar("advlib_progress", default=None)


def interactive() -> bool:
    """Whether a person is likely watching: stderr is a terminal, or this is a notebook."""
    shell = sys.modules.get("IPython")
    if shell is not None:
        get_ipython = getattr(shell, "get_ipython", None)
        kernel = get_ipython() if get_ipython is not None else None
        if kernel is not None and type(kernel).__name__ == "ZMQInteractiveShell":
            return True
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def check_progress(progress: Any) -> bool | None:
    """Validate a ``progress`` argument: True, False or None (show when interactive)."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress: expected True, False or None, got {progress!r}")
    return progress


class Progress:
    """A bar of ``total`` units (None: unknown, shows a rate but no ETA).

    Args:
        total: units of work expected, or None when unknown.
        desc: the bar's label.
        unit: what one unit is ("step", "sample", "batch").
        enabled: True shows the bar, False never, None (the default) when :func:`interactive`.
    """

    def __init__(
        self, total: float | None, desc: str, unit: str = "step", enabled: bool | None = None
    ) -> None:
        show = interactive() if enabled is None else enabled
        self._bar: Any = None
        self._share = 1.0  # units the innermost running loop covers
        self._done = 0.0  # units counted so far
        if show:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                dynamic_ncols=True,
                bar_format=_FORMAT if total is not None else _FORMAT_OPEN,
            )

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def update(self, n: float = 1) -> None:
        self._done += n
        if self._bar is not None:
            # Fractional counts: set the position (rounded, so sums of shares land on whole
            # units) rather than accumulate tqdm's own float.
            self._bar.n = round(self._done, 9)
            self._bar.update(0)

    def end_unit(self) -> None:
        """Round the count up to the next whole unit: one unit of work is over, whatever
        its loops left uncounted (an early stop)."""
        whole = float(int(self._done + 1e-9))
        if self._done > whole + 1e-9:
            self.update(whole + 1 - self._done)

    def add_total(self, n: float) -> None:
        """Expect ``n`` more units (work discovered while running)."""
        if self._bar is not None:
            self._bar.total = (self._bar.total or 0) + n
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @contextmanager
    def activate(self) -> Iterator[Progress]:
        """Make this the bar that :func:`steps` ticks, and close it at the end."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)
            self.close()


def active() -> Progress | None:
    """The bar that attack loops currently tick, if any."""
    return _active.get()


@contextmanager
def quiet() -> Iterator[None]:
    """No attack-level bars inside (``evaluate`` shows its own bar over samples)."""
    with Progress(None, "", enabled=False).activate():
        yield


def steps(n: int) -> Iterator[int]:
    """``range(n)``, advancing the active bar by ``1/n`` of the enclosing share per iteration
    (see the module documentation)."""
    bar = _active.get()
    if bar is None or not bar.shown or n <= 0:
        yield from range(n)
        return
    share = bar._share
    each = share / n
    try:
        for i in range(n):
            bar._share = each
            before = bar._done
            yield i
            bar.update(max(0.0, each - (bar._done - before)))  # what inner loops left
    finally:
        bar._share = share
