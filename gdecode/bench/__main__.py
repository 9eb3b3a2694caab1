"""``python -m gdecode.bench ...``: see :mod:`gdecode.bench.cli`."""

import sys

from gdecode.bench.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m gdecode.bench"))
