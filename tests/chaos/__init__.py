"""The chaos suite: hits through the real stack under faults, reconciled exactly (issue 7).

`make chaos` runs `tests.chaos.run` at full size; `tests/chaos/test_chaos.py` runs a short
version and the broken control run in the default test run.
"""
