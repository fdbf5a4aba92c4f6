"""The stage analyses: one module per measurement, and what is built from them.

Each measurement gives ``*_sums(model, tokens)`` (one row per sequence) and ``*_table(sums)``;
the signals, stage boundaries and the cross-model comparison are built from those.
"""
