"""``python -m gda_gl`` is the ``gda-gl`` command."""

from gda_gl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
