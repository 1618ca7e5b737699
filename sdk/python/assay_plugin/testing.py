"""Run a plugin natively exactly as its component would: inputs go through
JSON text and back, scores are range-checked (a score of 1.5 raises
:class:`~assay_plugin.Failed` here as it fails in the sandbox), outputs must
be JSON.

Calling the decorated function directly tests your logic only; these
helpers also test what the host will see. An exception other than a
:class:`~assay_plugin.PluginError` propagates (in the sandbox it becomes a
``failed`` error with the traceback in the captured stderr).
"""

from __future__ import annotations

import json
from typing import Any

from ._plugin import Plugin, decode_item, run_json, score_json
from ._values import Score, TargetOutput

_ABSENT = object()


def _text(value: Any):
    return None if value is None else json.dumps(value)


def score(
    plugin: Plugin,
    *,
    input: Any = "",
    output: Any = _ABSENT,
    ground_truth: Any = None,
    metadata: Any = None,
    config: Any = None,
    id: str = "item-1",
) -> Score:
    """Scores one item with ``plugin`` the way the component does. Leave
    ``output`` out to test a target that produced no output."""
    if plugin.kind != "scorer":
        raise TypeError(f"{plugin!r} is not a scorer")
    item = decode_item(id, json.dumps(input), _text(ground_truth), _text(metadata))
    out = None if output is _ABSENT else json.dumps(output)
    value, reason, meta = score_json(plugin, item, out, _text(config))
    return Score(value, reason, None if meta is None else json.loads(meta))


def run(
    plugin: Plugin,
    *,
    input: Any = "",
    ground_truth: Any = None,
    metadata: Any = None,
    config: Any = None,
    id: str = "item-1",
) -> TargetOutput:
    """Runs a target on one item the way the component does."""
    if plugin.kind != "target":
        raise TypeError(f"{plugin!r} is not a target")
    item = decode_item(id, json.dumps(input), _text(ground_truth), _text(metadata))
    output, trace_id = run_json(plugin, item, _text(config))
    return TargetOutput(json.loads(output), trace_id)
