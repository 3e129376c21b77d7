"""``python -m careloop.engine`` — the same as ``careloop engine`` (no Django involved)."""

import sys

from careloop.engine.cli import main

sys.exit(main(sys.argv[1:]))
