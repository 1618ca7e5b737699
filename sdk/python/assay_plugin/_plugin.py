"""The :func:`scorer` and :func:`target` decorators, and the one code path
(JSON text in, JSON text out) shared by the component and the test helpers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ._errors import Failed, InvalidInput
from ._values import Item, Score, ScoreInput, TargetInput, TargetOutput

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class PluginInfo:
    """What a plugin says about itself; ``id`` is the name runs use."""

    id: str
    name: str
    description: str


class Plugin:
    """A decorated scorer or target. Calling it calls the decorated function
    (or the class's method) directly, which is handy in tests."""

    def __init__(self, kind: str, info: PluginInfo, func: Callable[[Any], Any]):
        self.kind = kind
        self.info = info
        self._func = func

    def __call__(self, value: Any) -> Any:
        return self._func(value)

    def __repr__(self) -> str:
        return f"<assay {self.kind} {self.info.id!r}>"


#: Plugins declared so far, in order. A component exports exactly one.
_registry: list[Plugin] = []


def _declare(kind: str, method: str, id: str, name: Optional[str], description: str):
    if not _ID.match(id):
        raise ValueError(f"plugin id {id!r} must be lowercase [a-z0-9-]")

    def decorate(obj: Any) -> Plugin:
        if isinstance(obj, type):
            instance = obj()
            if not callable(getattr(instance, method, None)):
                raise TypeError(f"{obj.__name__} needs a `{method}(self, input)` method")
            func = getattr(instance, method)
        elif callable(obj):
            func = obj
        else:
            raise TypeError(f"@{kind} decorates a function or a class, not {obj!r}")
        plugin = Plugin(kind, PluginInfo(id, name or id, description), func)
        _registry.append(plugin)
        return plugin

    return decorate


def scorer(id: str, *, name: Optional[str] = None, description: str = ""):
    """Declares a scorer: a function ``f(input: ScoreInput) -> Score | float | bool``
    or a class with a ``score(self, input)`` method (instantiated once, with
    no arguments)."""
    return _declare("scorer", "score", id, name, description)


def target(id: str, *, name: Optional[str] = None, description: str = ""):
    """Declares a target: a function ``f(input: TargetInput) -> TargetOutput | value``
    (any JSON-serializable value is the output) or a class with a
    ``run(self, input)`` method."""
    return _declare("target", "run", id, name, description)


def the_plugin(kind: Optional[str] = None) -> Plugin:
    """The one plugin the loaded modules declared (of ``kind`` if given)."""
    found = [p for p in _registry if kind is None or p.kind == kind]
    if len(found) != 1:
        what = f"{kind}" if kind else "scorer or target"
        names = ", ".join(repr(p) for p in found) or "none"
        raise RuntimeError(f"a component exports exactly one {what}; declared: {names}")
    return found[0]


def _decode(what: str, text: Optional[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"invalid {what}: {e}") from None


def _encode(what: str, value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise Failed(f"the {what} is not JSON: {e}") from None


def decode_item(id: str, input: str, ground_truth: Optional[str], metadata: Optional[str]) -> Item:
    """An item from the JSON texts the contract passes."""
    return Item(
        id=id,
        input=_decode("input", input),
        ground_truth=_decode("ground truth", ground_truth),
        metadata=_decode("metadata", metadata),
    )


def score_json(plugin: Plugin, item: Item, output: Optional[str], config: Optional[str]):
    """Scores with JSON texts in; returns ``(value, reason, metadata_text)``.
    Raises :class:`PluginError` subclasses as the contract's error kinds."""
    inp = ScoreInput(
        item=item,
        output=_decode("output", output),
        config=_decode("config", config),
        has_output=output is not None,
    )
    result = plugin(inp)
    if isinstance(result, Score):
        score = result
    elif isinstance(result, (bool, int, float)):
        score = Score(result)
    else:
        raise Failed(f"a scorer returns a Score or a number, not {type(result).__name__}")
    score.check()
    meta = None if score.metadata is None else _encode("score metadata", score.metadata)
    return score.value, score.reason, meta


def run_json(plugin: Plugin, item: Item, config: Optional[str]):
    """Runs a target with JSON texts in; returns ``(output_text, trace_id)``."""
    result = plugin(TargetInput(item=item, config=_decode("config", config)))
    if not isinstance(result, TargetOutput):
        result = TargetOutput(result)
    if result.trace_id is not None and not isinstance(result.trace_id, str):
        raise Failed("trace_id must be a string")
    return _encode("output", result.output), result.trace_id


__all__ = ["Plugin", "PluginInfo", "scorer", "target"]
