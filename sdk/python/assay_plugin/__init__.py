"""Write assay scorers and targets in Python.

A scorer is a function (or a class with a ``score`` method) decorated with
:func:`scorer`; a target is one decorated with :func:`target`. Inputs arrive
as Python values (the JSON already decoded), errors are the exceptions
:class:`InvalidInput`, :class:`Transient` and :class:`Failed`, and
:mod:`assay_plugin.testing` runs a plugin natively, exactly as the component
would, without building any wasm.

Build a component with ``python -m assay_plugin build my_scorer.py``
(see ``sdk/python/README.md``).
"""

from ._errors import Failed, InvalidInput, PluginError, Transient
from ._plugin import Plugin, PluginInfo, scorer, target
from ._values import Item, Score, ScoreInput, TargetInput, TargetOutput, json_text

#: The version of the ``assay:plugin`` WIT contract this SDK builds against.
CONTRACT_VERSION = "0.1.0"

__all__ = [
    "CONTRACT_VERSION",
    "Failed",
    "InvalidInput",
    "Item",
    "Plugin",
    "PluginError",
    "PluginInfo",
    "Score",
    "ScoreInput",
    "TargetInput",
    "TargetOutput",
    "Transient",
    "json_text",
    "scorer",
    "target",
]
