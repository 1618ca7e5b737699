"""What plugins receive (items, inputs) and return (scores, outputs)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ._errors import Failed, InvalidInput


def json_text(value: Any) -> str:
    """The text of a JSON value: a string is its text, anything else its
    compact JSON (``{"a":1}``, ``42``, ``true``, ``null``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Item:
    """One dataset item, its JSON fields decoded to Python values."""

    id: str
    input: Any
    ground_truth: Any = None
    metadata: Any = None

    def input_text(self) -> str:
        """The input as text (see :func:`json_text`)."""
        return json_text(self.input)

    def require_ground_truth(self) -> Any:
        """The ground truth; :class:`InvalidInput` naming the item when it
        has none (absent or ``null``)."""
        if self.ground_truth is None:
            raise InvalidInput(f"item `{self.id}` has no ground truth")
        return self.ground_truth

    def ground_truth_text(self) -> Optional[str]:
        """The ground truth as text, ``None`` when absent."""
        return None if self.ground_truth is None else json_text(self.ground_truth)


def read_config(config: Any, defaults: Mapping[str, Any]) -> dict:
    """``defaults`` overridden by the run's config for this plugin.

    An absent or ``null`` config gives the defaults. A config that is not an
    object, a field not in ``defaults`` (a typo such as ``ignorecase``) or a
    value of another type than its default is :class:`InvalidInput` naming
    the field: nothing in a config is silently ignored.
    """
    merged = dict(defaults)
    if config is None:
        return merged
    if not isinstance(config, dict):
        raise InvalidInput(f"invalid config: expected an object, got {json_text(config)}")
    for key, value in config.items():
        if key not in defaults:
            known = ", ".join(f"`{k}`" for k in defaults) or "none"
            raise InvalidInput(f"invalid config: unknown field `{key}` (known: {known})")
        default = defaults[key]
        if default is not None and value is not None and not _same_type(default, value):
            raise InvalidInput(
                f"invalid config at `{key}`: expected {_type_name(default)}, got {json_text(value)}"
            )
        merged[key] = value
    return merged


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(default, float) or isinstance(value, int))
    return isinstance(value, type(default))


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


@dataclass
class ScoreInput:
    """Everything a scorer gets for one item."""

    item: Item
    #: The target's output; ``None`` when the target produced none (failed).
    output: Any = None
    #: The run's config for this scorer, ``None`` when not given.
    config: Any = None
    #: Whether the target produced an output (``output`` may be JSON ``null``).
    has_output: bool = False

    def output_text(self) -> Optional[str]:
        """The output as text (see :func:`json_text`), ``None`` without output."""
        return json_text(self.output) if self.has_output else None

    def ground_truth_text(self) -> Optional[str]:
        """The ground truth as text, ``None`` when the item has none."""
        return self.item.ground_truth_text()

    def require_output(self) -> Any:
        """The output; :class:`InvalidInput` when the target produced none."""
        if not self.has_output:
            raise InvalidInput("the target produced no output")
        return self.output

    def read_config(self, **defaults: Any) -> dict:
        """The config merged over ``defaults``; see :func:`read_config`."""
        return read_config(self.config, defaults)


@dataclass
class TargetInput:
    """Everything a target gets for one item."""

    item: Item
    #: The run's config for this target, ``None`` when not given.
    config: Any = None

    def read_config(self, **defaults: Any) -> dict:
        """The config merged over ``defaults``; see :func:`read_config`."""
        return read_config(self.config, defaults)


@dataclass
class Score:
    """A score in [0, 1] (0 worst, 1 best) with an optional reason and metadata.

    A scorer may also return a bare number or a bool (1 or 0). A value that
    is NaN, infinite or outside [0, 1] is a bug in the scorer: it becomes a
    ``failed`` error when the score leaves the plugin, never a stored score.
    """

    value: float
    reason: Optional[str] = None
    metadata: Any = None

    def check(self) -> "Score":
        """Raises :class:`Failed` unless the value is a number in [0, 1]."""
        v = self.value
        if isinstance(v, bool):
            v = 1.0 if v else 0.0
        if not isinstance(v, (int, float)):
            raise Failed(f"score {v!r} is not a number")
        if math.isnan(v) or not 0.0 <= v <= 1.0:
            raise Failed(f"score {v} is outside [0, 1]")
        if self.reason is not None and not isinstance(self.reason, str):
            raise Failed(f"score reason must be a string, got {type(self.reason).__name__}")
        self.value = float(v)
        return self


@dataclass
class TargetOutput:
    """A target's output (any JSON value) and an optional trace id."""

    output: Any
    trace_id: Optional[str] = None
