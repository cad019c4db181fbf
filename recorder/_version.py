"""Single source of the package version (shared by recorder and gda_gl).

Every release that changed the recording format has its own minor version (the format notes in
:mod:`recorder.schema` and the README name them): 0.1 schema 1 (raw columns); 0.2 schema 2 (compressed
columns, stored pyramid); 0.3 logged series tables, ``micro_batches``, per-row alphas; 0.4 ``samples``.
Files of every earlier release keep opening with the same numbers (tests/test_format.py).
"""

__version__ = "0.4.0"
#: (release, what it changed in the format), oldest first; the newest entry is this release's
FORMAT_RELEASES = (
    ("0.1", "schema 1: raw little-endian columns, no stored pyramid (read-only here; 'gda-gl upgrade')"),
    ("0.2", "schema 2: Zstandard-compressed columns and the stored level-of-detail pyramid"),
    ("0.3", "optional: logged series tables, the micro_batches statistic, per-row alphas (adaptive probe)"),
    ("0.4", "optional: the samples statistic (the samples-seen x axis)"),
)
