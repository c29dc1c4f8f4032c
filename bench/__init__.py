"""Benchmarks (numbers, not tests): `python -m bench.<name>`; reports in bench/results/."""
