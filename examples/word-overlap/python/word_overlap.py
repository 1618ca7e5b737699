"""Word overlap: the share of words the output and the ground truth have in
common (Jaccard index of their word sets). Words are runs of ASCII letters
and digits, compared case-insensitively; config `minWordLength` (default 1)
ignores shorter words. The Rust and JavaScript versions next to this folder
give the same scores."""

import re

from assay_plugin import Score, ScoreInput, json_text, scorer

WORD = re.compile(r"[A-Za-z0-9]+")


def words(text: str, min_length: int) -> set:
    return {w.lower() for w in WORD.findall(text) if len(w) >= min_length}


@scorer("word-overlap-py", name="Word overlap (Python)",
        description="Share of words the output and the ground truth have in common")
def word_overlap(input: ScoreInput) -> Score:
    config = input.read_config(minWordLength=1)
    # A missing ground truth raises InvalidInput naming the item.
    truth = words(json_text(input.item.require_ground_truth()), config["minWordLength"])
    if not input.has_output:
        return Score(0.0, "no output")
    output = words(input.output_text(), config["minWordLength"])
    union = truth | output
    if not union:
        return Score(1.0, "no words on either side")
    shared = truth & output
    return Score(len(shared) / len(union), f"{len(shared)} of {len(union)} words shared")

