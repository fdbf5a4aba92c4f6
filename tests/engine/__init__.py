"""Tests of the engine: plans against surgery, the sweep, metrics, Ray, speed."""
