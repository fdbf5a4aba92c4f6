"""Tests of the stage analyses against direct recomputations."""
