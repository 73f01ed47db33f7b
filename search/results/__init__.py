"""What a run leaves in runs/<name>/: files written atomically (files.py), the result tables
(tables.py), and what the terminal shows (summary.py)."""

from search.results.files import log_to, write_atomic, write_csv, write_yaml
from search.results.tables import best_summary, family_table, sampled_candidates, trials_table

__all__ = ["best_summary", "family_table", "log_to", "sampled_candidates", "trials_table", "write_atomic", "write_csv",
           "write_yaml"]
