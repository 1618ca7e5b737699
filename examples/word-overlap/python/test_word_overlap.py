import unittest

from assay_plugin import Failed, InvalidInput, testing
from word_overlap import word_overlap


class WordOverlapTest(unittest.TestCase):
    def test_identical_words_score_one(self):
        s = testing.score(word_overlap, output="Rome", ground_truth="rome")
        self.assertEqual(s.value, 1.0)
        self.assertEqual(s.reason, "1 of 1 words shared")

    def test_partial_overlap_is_the_jaccard_index(self):
        s = testing.score(word_overlap, output="The capital of Italy is Rome.", ground_truth="Rome")
        self.assertAlmostEqual(s.value, 1 / 6)

    def test_min_word_length_ignores_short_words(self):
        s = testing.score(word_overlap, output="it is Rome", ground_truth="Rome",
                          config={"minWordLength": 3})
        self.assertEqual(s.value, 1.0)

    def test_no_ground_truth_is_invalid_input(self):
        with self.assertRaisesRegex(InvalidInput, "item `item-1` has no ground truth"):
            testing.score(word_overlap, output="Rome")

    def test_unknown_config_field_is_invalid_input(self):
        with self.assertRaisesRegex(InvalidInput, "unknown field `minLength`"):
            testing.score(word_overlap, output="x", ground_truth="x", config={"minLength": 2})

    def test_no_output_scores_zero(self):
        self.assertEqual(testing.score(word_overlap, ground_truth="Rome").value, 0.0)


if __name__ == "__main__":
    unittest.main()
