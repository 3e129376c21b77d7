"""``python -m careloop.engine`` — the same as ``careloop engine`` (no Django involved)."""

import sys

from careloop.engine.cli import main

# Guarded: the recording encoder's worker process (multiprocessing "spawn") imports this module
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
