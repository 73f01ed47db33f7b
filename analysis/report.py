"""One report per run, in the order a reader needs it: the result, how far to trust it, the figures,
then Optuna's own diagnostics; in Markdown and HTML.

    python -m analysis.report runs/<name>

Gathers what the analysis scripts wrote into figures/ and tables/ (run them first), with an account
of the run from config.yaml, candidates.csv, trials.csv and best.yaml, and fidelity.md when
`python -m search.fidelity` has re-scored the candidates. Accuracy is shown in percent with one
decimal throughout; points that were not trained are counted in one line, not listed. Writes
report.md and report.html into the run folder: report.md refers to the figures by relative path,
report.html embeds them, so it can be sent on its own.
"""

from __future__ import annotations

import argparse
import base64
import html
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

from analysis import common
from search.results.summary import margin_sentence

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 1.5em}"
         "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}")
MIN_IMPORTANCE_TRIALS = 5  # fANOVA on fewer completed trials ranks parameters by noise
OPTUNA = ("optuna_history", "optuna_importance")
HEADINGS = ["Result", "Uncertainty", "Scaling curves and figures", "Optuna diagnostics"]
TITLES = {
    "search": "Accuracy against FLOPs, and the alpha-beta map",
    "fig3": "Scaling width, depth or resolution alone (paper Fig. 3)",
    "fig4": "Width scaling from several depth and resolution baselines (paper Fig. 4)",
    "fig8": "Compound against single-dimension scaling at equal FLOPs (paper Fig. 8)",
    "table3": "Compound scaling of other bases (paper Table 3)",
    "family": "The compound family the best coefficients imply",
    "optuna_history": "Optimisation history",
    "optuna_importance": "Parameter importance",
}
CAPTIONS = {
    "search": "Left: proxy accuracy of each kept candidate against its measured FLOPs (pruned points at their last "
              "reported accuracy, failed ones as crosses). Right: the alpha-beta grid coloured by accuracy, gamma "
              "implied by the FLOPs constraint, the best candidate starred.",
    "fig3": "Proxy accuracy against FLOPs when only one of width, depth or resolution grows; "
            "the paper's point is that each saturates.",
    "fig4": "Proxy accuracy of width scaling started from different depths and resolutions; "
            "a higher line means scaling the dimensions together pays.",
    "fig8": "Proxy accuracy of each scaling method against measured FLOPs; "
            "compound scaling should lie above the single-dimension lines.",
    "table3": "Proxy accuracy against FLOPs per base, single-dimension and compound scaling side by side.",
    "family": "Proxy accuracy against FLOPs of the family members scaled by alpha^phi, beta^phi, gamma^phi.",
    "optuna_history": "Optuna's objective for each trial in order, with the best so far; "
                      "its axis is accuracy as a fraction (0.297 = 29.7%).",
    "optuna_importance": "Optuna's fANOVA estimate of the share of the accuracy's variance each search parameter explains.",
}
COST_CAPTION = ("The same points against activations and against forward latency measured on this machine, "
                "since FLOPs predict speed poorly.")
TABLE_CAPTION = "The numbers behind the figures above, one row per trained point; accuracy in percent."


def title_of(stem: str) -> str:
    base = stem.removesuffix("_cost")
    title = TITLES.get(base, base.replace("_", " ").capitalize())
    return f"{title}: cost" if stem.endswith("_cost") else title


def caption_of(stem: str) -> str:
    if stem.endswith("_cost"):
        return COST_CAPTION
    return CAPTIONS.get(stem, f"Figure written by this run's analysis script ({stem}); accuracy in percent.")


def percent(fraction) -> str:
    return "n/a" if fraction is None or pd.isna(fraction) else f"{100 * float(fraction):.1f}%"


def cell(value, column: str) -> str:
    """A table cell: accuracy as 29.7%, whole (or large) numbers as integers, other numbers to 4 digits."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, str) or pd.api.types.is_bool(value):
        return str(value)
    if column == "score":
        return percent(value)
    if column.startswith("accuracy") or column == "paper_top1":  # already in percent
        return f"{value:.1f}%"
    if float(value).is_integer() or abs(value) >= 1e4:
        return str(round(value))
    return f"{value:.4g}"


def trained_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the rows of points that were trained: kept by the FLOPs filter and with a trial."""
    if "kept" in frame:
        frame = frame[frame.kept.astype(str).str.lower() == "true"].drop(columns="kept")
    if "state" in frame:
        frame = frame[frame.state != "NOT RUN"]
    return frame


def not_run_line(config: dict, points: pd.DataFrame) -> str | None:
    """One line counting the points that were not trained, and why."""
    kept = points.kept.astype(bool)
    outside, untried = int((~kept).sum()), int((kept & (points.state == "NOT RUN")).sum())
    if not outside and not untried:
        return None
    what = "grid points" if (points.series == "grid").all() else "series points"
    search = config.get("search", {})
    reasons = [(outside, f"outside the FLOPs tolerance (measured ratio more than "
                         f"{search.get('flops_tolerance', 0):.0%} from {search.get('target')})"),
               (untried, "kept but never tried (the search stopped first)")]
    reasons = [(n, why) for n, why in reasons if n]
    why = reasons[0][1] if len(reasons) == 1 else "; ".join(f"{n} {why}" for n, why in reasons)
    return f"{outside + untried} of {len(points)} {what} were not trained: {why}."


def result_lines(run_dir: Path, config: dict, points: pd.DataFrame) -> list[str]:
    """The best candidate and its lead from best.yaml, then what was run and how it went."""
    lines = []
    best_path = run_dir / "best.yaml"
    if best_path.is_file():
        best = yaml.safe_load(best_path.read_text())
        spread = f" (std {percent(best['score_std'])} over seeds)" if best.get("score_std") else ""
        lines.append(f"Best candidate: alpha={best['alpha']:g}, beta={best['beta']:g}, gamma={best['gamma']:g} "
                     f"(trial {best['trial']}), proxy top-1 accuracy {percent(best['score'])}{spread}, "
                     f"measured FLOPs ratio {best['measured_ratio']:.3f}.")
        if best.get("runner_up_trial") is not None:
            lines.append(f"Runner-up: trial {best['runner_up_trial']} at {percent(best['runner_up_score'])}.")
        lead = margin_sentence(best, run_dir).rstrip(".")
        lines.append(f"{lead}. Verdict: {best['verdict'].replace('_', ' ')}.")
    else:
        lines.append("No best.yaml: this run compares series rather than picking one candidate; "
                     "the figures below hold its result.")
    return lines + account(config, points)


def account(config: dict, points: pd.DataFrame) -> list[str]:
    """Short sentences saying what was run and how it went."""
    base, train, data = config["base"], config["train"], config["data"]
    trials = points[points.kept].drop_duplicates("key")
    states = trials.state.value_counts().to_dict()
    if (points.series == "grid").all():
        what = (f"A compound-scaling search on {base['name']}: {int(points.kept.sum())} of {len(points)} grid points "
                f"kept by the FLOPs filter (alpha * beta^2 * gamma^2 ~= {config['search']['target']}).")
    else:
        series = ", ".join(dict.fromkeys(points.series))
        what = f"An experiment of {points.series.nunique()} series ({series}), {len(trials)} distinct networks."
    budget = f"{train['epochs']} epoch{'s' * (train['epochs'] != 1)}" + (f" of at most {train['max_images']} images" if train.get("max_images") else "")
    lines = [
        what,
        f"Proxy: {base['name']} ({base['variant']} variant, width {base['width']}, {base['resolution']} px) on "
        f"{data['name']}, trained {budget} per point, batch {train['batch_size']}, lr {train['lr']} ({train['schedule']}).",
        "Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) + ".",
    ]
    lines += [line for line in [not_run_line(config, points)] if line]
    seconds = pd.to_numeric(trials.train_seconds, errors="coerce").sum() + pd.to_numeric(trials.eval_seconds, errors="coerce").sum()
    if seconds:
        lines.append(f"Training and evaluation took {seconds / 60:.1f} minutes in all." if seconds >= 120
                     else f"Training and evaluation took {seconds:.0f} seconds in all.")
    return lines


def uncertainty(run_dir: Path) -> list[str]:
    path = run_dir / "fidelity.md"
    if not path.is_file():
        return ["Not measured: each candidate's accuracy comes from one short proxy training, so the ranking's "
                f"noise is unknown; `python -m search.fidelity {run_dir}` re-trains the top candidates over seeds "
                "and a longer budget to measure it."]
    text = path.read_text().splitlines()  # its own heading becomes a sub-heading of this section
    return [("### " + line.lstrip("# ")) if line.startswith("#") else line for line in text]


def figure_block(fig: Path) -> list[str]:
    return [f"### {title_of(fig.stem)}", "", caption_of(fig.stem), "", f"![{title_of(fig.stem)}](figures/{fig.name})", ""]


def table_block(table: Path) -> list[str]:
    frame = pd.read_csv(table)
    shown = trained_rows(frame)
    left = len(frame) - len(shown)
    caption = TABLE_CAPTION + (f" The {left} rows not trained are left out (counted under Result)." if left else "")
    return [f"### Table: {title_of(table.stem)}", "", caption, "", common.to_markdown(common.with_plus_minus(shown), cell), ""]


def diagnostics(figures: list[Path], completed: int) -> list[str]:
    out = []
    for fig in figures:
        if fig.stem == "optuna_importance" and completed < MIN_IMPORTANCE_TRIALS:
            out += [f"Parameter importance is left out: only {completed} trials completed, and an importance "
                    f"fitted on fewer than {MIN_IMPORTANCE_TRIALS} reflects noise, not the parameters.", ""]
        else:
            out += figure_block(fig)
    return out


def markdown(run_dir: Path, config: dict, points: pd.DataFrame) -> str:
    """The whole report: result, uncertainty, figures and tables, then Optuna's diagnostics."""
    figures = sorted((run_dir / "figures").glob("*.png"))
    project = [f for f in figures if f.stem not in OPTUNA]
    optuna = [f for f in figures if f.stem in OPTUNA]
    completed = int((points[points.kept].drop_duplicates("key").state == "COMPLETE").sum())
    out = [f"# Run {config['name']}", "", f"## {HEADINGS[0]}", ""]
    out += [line for text in result_lines(run_dir, config, points) for line in (text, "")]
    out += [f"## {HEADINGS[1]}", "", *uncertainty(run_dir), ""]
    out += [f"## {HEADINGS[2]}", "", "What the analysis scripts drew from this run's points.", ""]
    for fig in project:
        out += figure_block(fig)
    for table in sorted((run_dir / "tables").glob("*.csv")):
        out += table_block(table)
    if optuna:
        out += [f"## {HEADINGS[3]}", "", "Optuna's own plots of the study; with few trials they describe the "
                "sampler's path more than the search space.", "", *diagnostics(optuna, completed)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip() + "\n"


def to_html(text: str, run_dir: Path) -> str:
    """report.md as a self-contained page: headings, paragraphs, lists, tables, images embedded."""
    body, rows, items = [], [], []

    def flush():
        if rows:
            cells = [[html.escape(c.strip()) for c in r.strip("|").split("|")] for r in rows if not r.startswith("|--")]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rest}</table>")
        if items:
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
        rows.clear(), items.clear()

    for line in text.splitlines():
        image = re.fullmatch(r"!\[(.*)\]\((.+)\)", line)
        if not line.startswith("|"):
            rows and flush()
        if not line.startswith("- "):
            items and flush()
        if line.startswith("|"):
            rows.append(line)
        elif line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif image:  # embedded: the page is whole when sent on its own
            data = base64.b64encode((run_dir / image[2]).read_bytes()).decode("ascii")
            body.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(image[1])}" style="max-width:100%">')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    title = html.escape(text.splitlines()[0].lstrip("# "))
    head = f"<meta charset='utf-8'><title>{title}</title><style>{STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder written by run_search.py (runs/<name>)")
    run_dir = parser.parse_args(argv).run_dir
    config = common.load_config(run_dir)
    points = common.load_points(run_dir)
    if not list((run_dir / "figures").glob("*.png")) and not list((run_dir / "tables").glob("*.csv")):
        print(f"note: {run_dir} has no figures or tables yet; run its analysis script(s) first")
    text = markdown(run_dir, config, points)
    common.write_atomic(run_dir / "report.md", text)
    common.write_atomic(run_dir / "report.html", to_html(text, run_dir))
    print(f"{run_dir / 'report.md'}\n{run_dir / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
