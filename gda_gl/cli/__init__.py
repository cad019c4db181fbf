"""The ``gda-gl`` command line: :mod:`.main` (the parser, the subcommands and the one-line exit).

A face, like :mod:`gda_gl.explorer` and :mod:`gda_gl.notebook`: it opens runs through
:mod:`gda_gl.session`, composes with :mod:`gda_gl.compose` and draws with :mod:`gda_gl.gl`.
"""

from .main import main

__all__ = ["main"]
