"""Evaluation: ABAW's exact metrics (``metrics``), scoring prediction files (``scoring``),
``evaluate`` and ``predict`` on a labelled split or a test list (``evaluate``), and the
submission layout of ABAW's one-file-per-task upload (``submission``)."""
