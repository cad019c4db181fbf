"""gda_gl: GPU-accelerated gradient descent analysis (engine and viewer).

Reads recordings written by :mod:`recorder` (the only input: see
:mod:`recorder.schema`) and draws the enhanced training error curve of
Becker, Lippel and Zielke (IVAPP 2019) with OpenGL through VisPy.  Importing
this package is cheap: VisPy and OpenGL are imported by the modules that draw.
"""

from recorder._version import __version__

__all__ = ["__version__"]
