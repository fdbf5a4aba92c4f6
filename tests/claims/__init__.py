"""Tests of the statistics and the verdicts."""
