"""The trial loop: open a run's context (context.py), claim, train, report, tell and retry
(loop.py), and the local worker processes that share it (workers.py)."""
