"""The repository's benchmarks: the packaged suites plus peer comparisons, RESULTS.md and the GPU run.

``python -m benchmarks [--quick] [--only NAME[,NAME]] [--json F] [--no-results-md]`` runs the suites
that ship with gda-gl (:mod:`gda_gl.bench`: probe, store, lod, render, scale; ``gda-gl bench`` runs them
on an installed copy), adds the comparisons with other libraries (:mod:`benchmarks.peers`: matplotlib,
tsdownsample, Cockpit), prints a table per suite, writes JSON with the machine description and refreshes
``benchmarks/RESULTS.md``.  ``benchmarks/gpu/`` is the GPU run (``bash benchmarks/gpu/run.sh``) and
``benchmarks/tools/`` holds one-off measurements.  Nothing here is asserted by the tests, and nothing in
the installed package imports this package; it is not part of the wheel.
"""
