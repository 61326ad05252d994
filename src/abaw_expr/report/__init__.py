"""Reports of training runs: one run as a self-contained HTML page, several side by side.

``write_run_report(run_dir, eval_dir=None, annotations_dir=None, out=None)`` writes
``report.html`` (curves, learning rate, confusion matrix, per-class F1, label timelines) and
its PNGs; ``compare_runs(run_dirs, out_html=None)`` returns a text table of the runs (config
differences, F1, training time) and can write it as HTML too.
"""

from .compare import compare_runs
from .html import write_run_report

__all__ = ["compare_runs", "write_run_report"]
