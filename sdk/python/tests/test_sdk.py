"""Tests of the Python SDK itself (the native side; the host tests build
components with it and check them in the sandbox)."""

import math
import unittest

from assay_plugin import (Failed, InvalidInput, Score, TargetOutput, Transient, json_text,
                          scorer, target, testing)
from assay_plugin import _plugin


def fresh(test):
    """Runs a test with an empty plugin registry, restored afterwards."""
    def wrapper(self):
        saved = list(_plugin._registry)
        _plugin._registry.clear()
        try:
            test(self)
        finally:
            _plugin._registry[:] = saved
    return wrapper


class ScoreRangeTest(unittest.TestCase):
    @fresh
    def test_out_of_range_and_nan_scores_are_failed_errors(self):
        @scorer("s")
        def s(input):
            return input.read_config(v=0.0)["v"]

        self.assertEqual(testing.score(s, output="x", config={"v": 1}).value, 1.0)
        self.assertEqual(testing.score(s, output="x", config={"v": 0}).value, 0.0)
        for bad in (1.5, -0.1):
            with self.assertRaisesRegex(Failed, "outside \\[0, 1\\]"):
                testing.score(s, output="x", config={"v": bad})

        @scorer("nan")
        def nan(input):
            return math.nan

        with self.assertRaisesRegex(Failed, "nan is outside"):
            testing.score(nan, output="x")

    @fresh
    def test_bools_and_numbers_are_scores(self):
        @scorer("b")
        def b(input):
            return input.output == "yes"

        self.assertEqual(testing.score(b, output="yes").value, 1.0)
        self.assertEqual(testing.score(b, output="no").value, 0.0)

    @fresh
    def test_a_non_score_return_is_a_failed_error(self):
        @scorer("wrong")
        def wrong(input):
            return "0.5"

        with self.assertRaisesRegex(Failed, "returns a Score or a number, not str"):
            testing.score(wrong, output="x")


class InputsTest(unittest.TestCase):
    @fresh
    def test_json_arrives_decoded(self):
        seen = {}

        @scorer("spy")
        def spy(input):
            seen.update(item=input.item, output=input.output, config=input.config,
                        has_output=input.has_output)
            return Score(1.0, metadata={"n": [1, 2]})

        s = testing.score(spy, input={"q": [1, "two"]}, output=None, ground_truth=3.5,
                          metadata={"k": True}, config={"a": 1}, id="i-9")
        self.assertEqual(seen["item"].id, "i-9")
        self.assertEqual(seen["item"].input, {"q": [1, "two"]})
        self.assertEqual(seen["item"].ground_truth, 3.5)
        self.assertEqual(seen["item"].metadata, {"k": True})
        self.assertEqual(seen["config"], {"a": 1})
        # JSON null is an output; leaving it out is "the target failed".
        self.assertTrue(seen["has_output"])
        self.assertIsNone(seen["output"])
        self.assertEqual(s.metadata, {"n": [1, 2]})
        testing.score(spy)
        self.assertFalse(seen["has_output"])

    def test_json_text(self):
        self.assertEqual(json_text("Paris"), "Paris")
        self.assertEqual(json_text({"city": "Paris", "n": [1]}), '{"city":"Paris","n":[1]}')
        self.assertEqual(json_text(True), "true")


class ConfigTest(unittest.TestCase):
    @fresh
    def test_config_errors_name_the_field(self):
        @scorer("c")
        def c(input):
            input.read_config(ignoreCase=False, limit=3, ratio=0.5)
            return 1.0

        ok = [None, {}, {"ignoreCase": True, "limit": 4, "ratio": 1}]
        for config in ok:
            self.assertEqual(testing.score(c, output="x", config=config).value, 1.0)
        bad = [
            ({"ignorecase": True}, "unknown field `ignorecase`"),
            ({"ignoreCase": "yes"}, "at `ignoreCase`: expected a boolean"),
            ({"limit": 2.5}, "at `limit`: expected an integer"),
            ({"limit": True}, "at `limit`: expected an integer"),
            ([1, 2], "expected an object"),
        ]
        for config, message in bad:
            with self.assertRaisesRegex(InvalidInput, message):
                testing.score(c, output="x", config=config)


class ErrorsAndTargetsTest(unittest.TestCase):
    @fresh
    def test_a_class_is_a_plugin_and_errors_are_exceptions(self):
        @target("t", name="T", description="d")
        class T:
            def run(self, input):
                mode = input.read_config(mode="ok")["mode"]
                if mode == "transient":
                    raise Transient("rate limited")
                if mode == "nan":
                    return {"x": math.nan}
                return TargetOutput({"echo": input.item.input}, trace_id="tr-1")

        out = testing.run(T, input=[1, 2])
        self.assertEqual(out.output, {"echo": [1, 2]})
        self.assertEqual(out.trace_id, "tr-1")
        self.assertEqual(T.info.name, "T")
        with self.assertRaisesRegex(Transient, "rate limited"):
            testing.run(T, config={"mode": "transient"})
        with self.assertRaisesRegex(Failed, "output is not JSON"):
            testing.run(T, config={"mode": "nan"})

    def test_ids_are_checked(self):
        with self.assertRaises(ValueError):
            scorer("Not Valid")

    @fresh
    def test_a_component_exports_exactly_one_plugin(self):
        with self.assertRaisesRegex(RuntimeError, "exactly one scorer or target; declared: none"):
            _plugin.the_plugin()
        scorer("a")(lambda i: 1.0)
        scorer("b")(lambda i: 1.0)
        with self.assertRaisesRegex(RuntimeError, "declared: <assay scorer 'a'>, <assay scorer 'b'>"):
            _plugin.the_plugin("scorer")


class ContractTest(unittest.TestCase):
    def test_the_wit_folder_is_the_contract_version_the_sdk_declares(self):
        from assay_plugin import CONTRACT_VERSION, build
        wit = (build.WIT_DIR / "assay.wit").read_text()
        self.assertIn(f"package assay:plugin@{CONTRACT_VERSION};", wit)


if __name__ == "__main__":
    unittest.main()
