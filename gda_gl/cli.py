"""The ``gda-gl`` command line.

Every subcommand turns bad input into one line on stderr naming the file and
the problem, and exit status 2; no traceback reaches the user.  Heavy imports
(torch, VisPy) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from recorder._version import __version__
from recorder.errors import RecordingError

log = logging.getLogger("gda_gl")

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line input that is not about a recording file."""


def _cmd_info(args: argparse.Namespace) -> int:
    from recorder.store import Recording

    from .summary import info_text

    for i, path in enumerate(args.runs):
        with Recording(path) as rec:
            if i:
                print()
            print(info_text(rec))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gda-gl",
        description="Gradient descent analysis: record phi_k(alpha) = L(w_k + alpha d_k) during PyTorch "
                    "training and draw the enhanced training error curve.")
    p.add_argument("--version", action="version", version=f"gda-gl {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("info", help="summarise recordings", description="Summarise one or more recordings.")
    q.add_argument("runs", nargs="+", metavar="RUN.gda")
    q.set_defaults(func=_cmd_info)

    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except RecordingError as exc:
        print(f"gda-gl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UsageError as exc:
        print(f"gda-gl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("gda-gl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
