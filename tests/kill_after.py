"""Runs an ``abaw-expr`` command that kills itself with SIGKILL at the Nth call of a function.

    python tests/kill_after.py MODULE:ATTR.PATH N abaw-expr-args...

Used by tests/test_robustness.py: nothing is flushed, closed or cleaned up on the way out,
as when a job is killed by the machine or the scheduler.
"""

import importlib
import os
import signal
import sys

from abaw_expr.cli import main


def kill_at_call(target: str, n: int) -> None:
    module_name, _, attr_path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = attr_path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


if __name__ == "__main__":
    kill_at_call(sys.argv[1], int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
