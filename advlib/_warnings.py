"""Warnings attributed to the user's line, however deep inside advlib they are raised."""

from __future__ import annotations

import sys
import warnings


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside the advlib package,
    so the warning names the user's line (and ``once`` filters key on it)."""
    frame, level = sys._getframe(1), 2  # level 2: the caller of warn_user
    while frame is not None and _in_advlib(frame.f_globals.get("__name__")):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    warnings.warn(message, category, stacklevel=level)


def _in_advlib(module: object) -> bool:
    return isinstance(module, str) and (module == "advlib" or module.startswith("advlib."))
