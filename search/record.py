"""The candidate record and its results, named once: candidates.csv, trial user attrs, trials.csv, plots."""

CANDIDATE_COLUMNS = [
    "key", "series", "base", "variant", "num_classes", "in_channels", "alpha", "beta", "gamma", "phi", "d", "w", "r",
    "depth", "width", "resolution", "params", "flops", "fvcore_flops", "activations", "formula_ratio",
    "measured_ratio", "target_flops", "kept",
]
RESULT_COLUMNS = [
    "score", "score_std", "seed_scores", "accuracies", "images_seen", "train_seconds", "eval_seconds", "precision",
    "failure", "duplicate_of",
]
SEARCH_SERIES = ("grid", "shares")  # the series name of a search's candidates, by search.space
SHARE_PARAMS = ("depth_fraction", "resolution_fraction")  # Optuna params of search.space=shares (search/plan/shares.py)
TRIAL_COLUMNS = ["number", "state", "value", "duration_seconds", *CANDIDATE_COLUMNS, *SHARE_PARAMS, *RESULT_COLUMNS]
GRID_PARAMS = ("alpha", "beta", "gamma")  # Optuna params of a search's trials
SERIES_PARAMS = ("d", "w", "r")  # Optuna params of an experiment's trials
