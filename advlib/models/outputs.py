"""Picking the logits out of a model that returns a tuple or a dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class OutputSelector:
    """Select ``output_key`` from a dict output or ``output_index`` from a tuple output."""

    def __init__(self, output_key: str | None = None, output_index: int | None = None) -> None:
        if output_key is not None and output_index is not None:
            raise ValueError("output_key and output_index: pass at most one of them")
        if output_index is not None and not isinstance(output_index, int):
            raise TypeError(f"output_index: expected an int, got {output_index!r}")
        self.key = output_key
        self.index = output_index

    def __call__(self, outputs: Any) -> Any:
        if isinstance(outputs, Mapping):
            if self.key is None:
                raise TypeError(
                    "the model returned a dict with keys "
                    f"{sorted(map(str, outputs))}; pass output_key=... to the model wrapper "
                    "to say which entry holds the logits"
                )
            return outputs[self.key]
        if isinstance(outputs, tuple | list):
            if self.index is None:
                raise TypeError(
                    f"the model returned a {type(outputs).__name__} of {len(outputs)} items; "
                    "pass output_index=... to the model wrapper to say which one holds the logits"
                )
            return outputs[self.index]
        if self.key is not None and hasattr(outputs, self.key):
            return getattr(outputs, self.key)
        return outputs
