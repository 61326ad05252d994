"""Reports of training runs: one run as a self-contained HTML page, several side by side.

``write_run_report(run_dir, eval_dir=None, annotations_dir=None, out=None)`` writes
``report.html`` (curves, learning rate, confusion matrix, per-class F1, label timelines; for
runs of the VA and AU tracks their CCC and AU F1 per epoch, valence and arousal over time and
the F1 of each AU) and its PNGs; ``compare_runs(run_dirs, out_html=None)`` returns a text
table of the runs (config differences, tracks, best scores, F1, training time) and can write
it as HTML too.
"""

from abaw_expr.report.compare import compare_runs
from abaw_expr.report.html import write_run_report

__all__ = ["compare_runs", "write_run_report"]
