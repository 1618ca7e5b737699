"""A scorer that misbehaves on request (see README.md)."""

import sys

from assay_plugin import Failed, InvalidInput, Score, ScoreInput, Transient, scorer


@scorer("hostile-py", description="Misbehaves on request")
class Hostile:
    def score(self, input: ScoreInput) -> Score:
        what = input.read_config(do="score")["do"]
        if what == "invalid-input":
            raise InvalidInput("bad item")
        if what == "transient":
            raise Transient("try again")
        if what == "failed":
            raise Failed("gave up")
        if what == "crash":
            return {}["missing"]
        if what == "out-of-range":
            return Score(1.5)
        if what == "print":
            print("hello from stdout")
            print("hello from stderr", file=sys.stderr)
            return Score(1.0)
        return Score(0.5, "fine", {"lang": "python", "input": input.item.input})
