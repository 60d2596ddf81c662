"""Benchmarks: each prints its figures beside a baseline measured in the same run, as ratios.

These machines are noisy, so nothing here is a timed test: `make bench` prints, people read.
"""
