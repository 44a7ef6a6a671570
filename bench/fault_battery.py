"""Feeds every bad input of tests/test_fault_battery.py and prints the count the README quotes.

    python bench/fault_battery.py        # the count, and each fault not stopped clearly
    python bench/fault_battery.py -v     # also each fault's message

A fault is "clear" when it was stopped with a message that names what was
wrong, in one line for the CLI, and nothing was written; "silent" when
nothing stopped it; "unclear" otherwise (a message that does not say what
was wrong, a traceback, or files left behind).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_fault_battery import FAULTS, try_fault  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print every fault's message")
    args = parser.parse_args(argv)
    counts = {"clear": 0, "unclear": 0, "silent": 0}
    for fault in FAULTS:
        with tempfile.TemporaryDirectory() as folder:
            outcome = try_fault(fault, folder)
        kind = "clear" if outcome.clear(fault) else "silent" if not outcome.stopped else "unclear"
        counts[kind] += 1
        if kind != "clear":
            print(f"{kind:8s} {fault.name}: {outcome.describe(fault)}" + (f" [needs {fault.known}]" if fault.known else ""))
        elif args.verbose:
            print(f"{kind:8s} {fault.name}: {outcome.message.strip()}")
    print(
        f"{len(FAULTS)} bad inputs tried, {counts['clear']} stopped with a clear message, "
        f"{counts['unclear']} unclear, {counts['silent']} silent"
    )
    return 0 if counts["clear"] == len(FAULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
