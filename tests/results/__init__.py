"""Tests of the result cache, results packs and their live slice."""
