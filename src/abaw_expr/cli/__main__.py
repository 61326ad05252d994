"""``python -m abaw_expr.cli``: the ``abaw-expr`` command (the benchmarks run it so)."""

import sys

from abaw_expr.cli import main

sys.exit(main())
