"""``python -m gda_gl`` is the ``gda-gl`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
