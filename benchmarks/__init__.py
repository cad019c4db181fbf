"""gda_gl benchmarks: every speed claim of the README, measured side by side in one run.

``python -m benchmarks [--quick] [--only NAME[,NAME]] [--json F]`` (also ``gda-gl bench``)
runs the suites (probe, store, lod, render), prints a table per suite, writes
JSON with the machine description and refreshes ``benchmarks/RESULTS.md``.
Suites report ratios measured in the same run; absolute times drift on
shared machines.  Nothing here is asserted by the tests.
"""
