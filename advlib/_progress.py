"""Progress bars for long work: tqdm (its notebook widget under Jupyter), shown only when
somebody watches (a terminal or a notebook), with ``progress=False`` to turn them off.

Whoever owns a piece of work makes a :class:`Progress` bar current with
:meth:`Progress.activate` (an attack call, ``evaluate``) and hands out portions of it with
:meth:`Progress.portion`: an attack call splits its portion among its runs (chunks x epsilons),
and the attack's loops count their iterations with :func:`steps`, which splits the enclosing
portion evenly, nested loops included (C&W's binary search around its optimizer steps). So the
bar moves smoothly with an ETA, without any attack declaring its amount of work. A loop that
stops early leaves the rest of its portion to be counted when the portion ends. Counting is
Python arithmetic per iteration: no tensor is read, no host sync.
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

    @property
    def share(self) -> float:
        """The units the work running now may count (its portion)."""
        return self._share

    @contextmanager
    def portion(self, units: float) -> Iterator[None]:
        """Work worth ``units`` of the bar: loops inside split it; whatever they leave
        uncounted (an early stop) is counted at the end."""
        share, start = self._share, self._done
        self._share = units
        try:
            yield
        finally:
            self._share = share
            left = start + units - self._done
            if left > 0:
                self.update(left)

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
    """``range(n)``, each iteration a ``1/n`` portion of the enclosing one (see the module
    documentation); plain ``range`` when no bar is shown."""
    bar = _active.get()
    if bar is None or not bar.shown or n <= 0:
        yield from range(n)
        return
    each = bar.share / n
    for i in range(n):
        with bar.portion(each):
            yield i
