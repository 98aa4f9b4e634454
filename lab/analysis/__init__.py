"""The analysis layer: from the runs' tables to figures, RESULTS.md and CLAIMS.md.

- `stats`: confidence intervals, paired differences, censored formation times, verdicts;
- `inference`: exact and censoring-aware tests, counts with exact intervals, multiplicity
  (Holm within claim families), noncentral-t power, item-aware intervals, plateau labels;
- `evidence`: per-run measures (test metric at the validation-selected step, tokens to
  formation) and paired effects between arms;
- `claims`: the `Claim` type, how a claim is evaluated and the CLAIMS.md ledger (the claims
  can live beside the experiment they read, in `lab/experiments/`);
- `registry`: the figure registry (`@figure`), `Output` and natural key order;
- `render`: figures/README.md and RESULTS.md as Markdown;
- `plots`: plot primitives and the plots several experiments share;
- `prose`: sentences and table headings computed from the tables.

The rule of the layer, checked by tests/test_analysis_layer.py: no module here imports torch,
the trainer (`lab.train`), the sweep driver (`lab.sweep`) or an experiment (`lab.experiments`).
What an analysis needs from an experiment (its plan, its claims) is passed in.
"""
