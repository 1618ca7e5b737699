// Word overlap: the share of words the output and the ground truth have in
// common (Jaccard index of their word sets). Words are runs of ASCII letters
// and digits, compared case-insensitively; config `minWordLength` (default
// 1) ignores shorter words. The Rust and Python versions next to this
// folder give the same scores.

import { Score, jsonText, scorer } from 'assay-plugin';

const WORD = /[A-Za-z0-9]+/g;

function words(text, minLength) {
  return new Set((text.match(WORD) ?? []).filter((w) => w.length >= minLength).map((w) => w.toLowerCase()));
}

export const wordOverlap = scorer(
  {
    id: 'word-overlap-js',
    name: 'Word overlap (JavaScript)',
    description: 'Share of words the output and the ground truth have in common',
  },
  (input) => {
    const config = input.readConfig({ minWordLength: 1 });
    // A missing ground truth throws InvalidInput naming the item.
    const truth = words(jsonText(input.item.requireGroundTruth()), config.minWordLength);
    if (!input.hasOutput) return new Score(0, { reason: 'no output' });
    const output = words(input.outputText(), config.minWordLength);
    const union = new Set([...truth, ...output]);
    if (union.size === 0) return new Score(1, { reason: 'no words on either side' });
    const shared = [...truth].filter((w) => output.has(w)).length;
    return new Score(shared / union.size, { reason: `${shared} of ${union.size} words shared` });
  },
);
