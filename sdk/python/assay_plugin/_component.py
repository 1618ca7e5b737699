"""The component's exports: adapts the generated ``wit_world`` bindings to
the declared plugin. Imported only inside a component build (the bindings
exist only there); ``python -m assay_plugin build`` generates the module that
imports it."""

import sys
import traceback

from componentize_py_types import Err
from wit_world.imports import types

from ._errors import InvalidInput, PluginError, Transient
from ._plugin import decode_item, run_json, score_json, the_plugin


def _wit_error(err: Exception):
    """The contract's error for an exception (unexpected ones are ``failed``,
    their traceback printed to the captured stderr)."""
    if isinstance(err, InvalidInput):
        return types.PluginError_InvalidInput(err.message)
    if isinstance(err, Transient):
        return types.PluginError_Transient(err.message)
    if isinstance(err, PluginError):
        return types.PluginError_Failed(err.message)
    traceback.print_exception(err, file=sys.stderr)
    return types.PluginError_Failed(f"{type(err).__name__}: {err}")


def _info(kind: str):
    info = the_plugin(kind).info
    return types.PluginInfo(id=info.id, name=info.name, description=info.description)


def scorer_export():
    """The class componentize-py exports for world ``scorer-plugin``."""
    from wit_world import exports
    from wit_world.exports import scorer as wit_scorer

    class Scorer(exports.Scorer):
        def info(self):
            return _info("scorer")

        def score(self, item, output, config):
            try:
                it = decode_item(item.id, item.input, item.ground_truth, item.metadata)
                value, reason, meta = score_json(the_plugin("scorer"), it, output, config)
            except Exception as err:  # every failure crosses as a plugin-error
                raise Err(_wit_error(err))
            return wit_scorer.ScoreResult(value=value, reason=reason, metadata=meta)

    return Scorer


def target_export():
    """The class componentize-py exports for world ``target-plugin``."""
    from wit_world import exports
    from wit_world.exports import target as wit_target

    class Target(exports.Target):
        def info(self):
            return _info("target")

        def run(self, item, config):
            try:
                it = decode_item(item.id, item.input, item.ground_truth, item.metadata)
                output, trace_id = run_json(the_plugin("target"), it, config)
            except Exception as err:
                raise Err(_wit_error(err))
            return wit_target.TargetOutput(output=output, trace_id=trace_id)

    return Target
