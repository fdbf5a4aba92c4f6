"""Helpers for the tests that are not tests: the browser check of a built book."""
