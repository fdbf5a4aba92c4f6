"""The engine: intervention plans and how they run, the metrics, the batched runner, the sweep.

:mod:`.plans` (what an intervention is), :mod:`.forward` (running plans), :mod:`.metrics`,
:mod:`.runs` (the batched, cached, resumable runner), :mod:`.sweep`, :mod:`.scale_out` (Ray),
:mod:`.flops` and :mod:`.performance`.
"""
