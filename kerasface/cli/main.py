"""The `kerasface` command line: a thin layer over the library."""

import argparse
import os
import sys

from kerasface.cli import align, demo, evaluate, export, train, zoo


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="kerasface", description="Keras 3 model zoo for face recognition.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (zoo, train, demo, align, evaluate, export):
        command.register(commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as error:
        print(f"kerasface {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
