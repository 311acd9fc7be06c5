"""Save forever with ``atomic_write`` (the child process of tests/test_crash_safety.py).

Usage: ``python save_loop.py TARGET A_FILE B_FILE``. Reads contents A and B from the two files,
then saves A, B, A, B, ... to TARGET until killed, printing ``ready`` after the first completed
save. Imports only ``forecode_core.store.atomic`` (and the standard library) so it starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

from forecode_core.store.atomic import atomic_write


def main(argv: list[str]) -> int:
    target, a_file, b_file = argv
    contents = (Path(a_file).read_bytes(), Path(b_file).read_bytes())
    atomic_write(target, contents[0])
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    i = 1
    while True:
        atomic_write(target, contents[i % 2])
        i += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
