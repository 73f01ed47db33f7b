"""Planning: the grid (grid.py) or an experiment's series (series.py), turned into candidate
records (candidates.py); the run writes them to candidates.csv before anything is trained."""

from search.plan.candidates import ProxyBase, plan_candidates, unique_points

__all__ = ["ProxyBase", "plan_candidates", "unique_points"]
