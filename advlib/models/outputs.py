"""Picking the logits out of a model that returns a tuple or a dict."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


class OutputSelector:
    """Select ``output_key`` from a dict output or ``output_index`` from a tuple output.

    A key or index that the outputs do not have raises a ValueError that lists what the
    model returned.
    """

    def __init__(self, output_key: str | None = None, output_index: int | None = None) -> None:
        if output_key is not None and output_index is not None:
            raise ValueError("output_key and output_index: pass at most one of them")
        if output_index is not None and (
            isinstance(output_index, bool) or not isinstance(output_index, int)
        ):
            raise TypeError(f"output_index: expected an int, got {output_index!r}")
        self.key = output_key
        self.index = output_index

    def __call__(self, outputs: Any) -> Any:
        if isinstance(outputs, Mapping):
            return self._entry(outputs)
        if self.key is not None:
            if hasattr(outputs, self.key):
                return getattr(outputs, self.key)
            raise ValueError(
                f"output_key: the model returned a {type(outputs).__name__}, which has no "
                f"entry or attribute {self.key!r}; pass output_key only for models that "
                "return a dict"
            )
        if isinstance(outputs, tuple | list):
            return self._item(outputs)
        if self.index is not None:
            raise ValueError(
                f"output_index: the model returned a single {type(outputs).__name__}, not a "
                "tuple or list; remove output_index"
            )
        return outputs

    def _entry(self, outputs: Mapping[Any, Any]) -> Any:
        keys = list(outputs)
        if self.key is None:
            raise TypeError(
                f"the model returned a dict with keys {sorted(map(str, keys))}; pass "
                "output_key=... to the model wrapper to say which entry holds the logits"
            )
        if self.key not in outputs:
            close = difflib.get_close_matches(str(self.key), [str(k) for k in keys], n=1)
            hint = f"; did you mean output_key={close[0]!r}?" if close else ""
            raise ValueError(
                f"output_key: {self.key!r} is not a key of the model's outputs, whose keys "
                f"are {sorted(map(str, keys))}{hint}"
            )
        return outputs[self.key]

    def _item(self, outputs: tuple[Any, ...] | list[Any]) -> Any:
        n = len(outputs)
        if self.index is None:
            raise TypeError(
                f"the model returned a {type(outputs).__name__} of {n} items; pass "
                "output_index=... to the model wrapper to say which one holds the logits"
            )
        if not -n <= self.index < n:
            raise ValueError(
                f"output_index: {self.index} is out of range, the model returned a "
                f"{type(outputs).__name__} of {n} outputs (valid indices: 0 to {n - 1})"
            )
        return outputs[self.index]
