"""``python -m recorder.diagnose RUN.gda... [--json]`` (the same as ``gda-gl diagnose``)."""

import sys

from .report import main

sys.exit(main(prog="python -m recorder.diagnose"))
