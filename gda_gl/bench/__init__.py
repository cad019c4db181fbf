"""``gda-gl bench``: measure this machine's probe, store, level-of-detail, render and scale speed.

The suites live here so that an installed gda-gl can benchmark the workstation it runs on
(``pip install 'gda-gl[bench]'``, then ``gda-gl bench [--quick] [--only NAME[,NAME]] [--out DIR]``).
Each suite is a module with ``run(quick: bool) -> dict`` returning named tables (lists of row dicts);
:mod:`gda_gl.bench.runner` runs them, prints the tables and writes JSON and Markdown into the folder the
user names.  Every suite reports ratios against a floor measured in the same run (K plain forward passes,
one numpy pass, one plain GL line strip, numpy.save), since absolute times drift on shared machines.

Comparisons with other libraries (matplotlib, tsdownsample, Cockpit), the repository's
``benchmarks/RESULTS.md`` and the GPU script belong to the repository's ``benchmarks/`` package, which
builds on these suites; nothing in the installed package imports it.
"""

#: the suites in the order they run
SUITES = ("probe", "store", "lod", "render", "scale")
