// A scorer that misbehaves on request (see README.md).

import { Failed, InvalidInput, Score, Transient, scorer } from 'assay-plugin';

scorer(
  { id: 'hostile-js', description: 'Misbehaves on request' },
  {
    score(input) {
      const what = input.readConfig({ do: 'score' }).do;
      if (what === 'invalid-input') throw new InvalidInput('bad item');
      if (what === 'transient') throw new Transient('try again');
      if (what === 'failed') throw new Failed('gave up');
      if (what === 'crash') return input.missing.field;
      if (what === 'out-of-range') return new Score(1.5);
      if (what === 'print') {
        console.log('hello from stdout');
        console.error('hello from stderr');
        return new Score(1);
      }
      return new Score(0.5, { reason: 'fine', metadata: { lang: 'js', input: input.item.input } });
    },
  },
);
