"""Tests of loading models, and the real embedded model."""
