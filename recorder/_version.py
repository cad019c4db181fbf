"""Single source of the package version (shared by recorder and gda_gl)."""

__version__ = "0.1.0"
