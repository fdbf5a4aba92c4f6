"""Tests of the corpus and the case-study windows."""
