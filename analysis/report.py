"""One report per run: what was run, its figures and its tables, in Markdown and HTML.

    python -m analysis.report runs/<name>

Gathers what the analysis scripts wrote into figures/ and tables/ (run them first), with a short
account of the run from config.yaml, candidates.csv, trials.csv and best.yaml, and fidelity.md
when `python -m search.fidelity` has re-scored the candidates. Writes report.md
and report.html into the run folder: report.md refers to the figures by relative path, report.html
embeds them, so it can be sent on its own.
"""

from __future__ import annotations

import argparse
import base64
import html
import sys
from pathlib import Path

import pandas as pd
import yaml

from analysis import common


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto}"
         "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}")


def summary(run_dir: Path, config: dict, points: pd.DataFrame) -> list[str]:
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
    budget = f"{train['epochs']} epochs" + (f" of at most {train['max_images']} images" if train.get("max_images") else "")
    lines = [
        what,
        f"Proxy: {base['name']} ({base['variant']} variant, width {base['width']}, {base['resolution']} px) on "
        f"{data['name']}, trained {budget} per point, batch {train['batch_size']}, lr {train['lr']} ({train['schedule']}).",
        "Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) + ".",
    ]
    seconds = pd.to_numeric(trials.train_seconds, errors="coerce").sum() + pd.to_numeric(trials.eval_seconds, errors="coerce").sum()
    if seconds:
        lines.append(f"Training and evaluation took {seconds / 60:.1f} minutes in all." if seconds >= 120
                     else f"Training and evaluation took {seconds:.0f} seconds in all.")
    best_path = run_dir / "best.yaml"
    if best_path.is_file():
        best = yaml.safe_load(best_path.read_text())
        lines.append(f"Best: alpha={best['alpha']}, beta={best['beta']}, gamma={best['gamma']} "
                     f"(score {best['score']:.4f}, measured FLOPs ratio {best['measured_ratio']:.3f}).")
    return lines


def markdown(title: str, lines: list[str], figures: list[Path], tables: list[Path], fidelity: Path | None = None) -> str:
    out = [f"# {title}", "", *lines, ""]
    for fig in figures:
        out += [f"## {fig.stem}", "", f"![{fig.stem}](figures/{fig.name})", ""]
    for table in tables:
        out += [f"## Table: {table.stem}", "", table.read_text(), ""]
    if fidelity is not None:
        out += [fidelity.read_text(), ""]
    return "\n".join(out)


def fidelity_html(fidelity: Path) -> list[str]:
    """fidelity.md as HTML: its heading, its table (from fidelity.csv) and its findings."""
    text = fidelity.read_text().splitlines()
    heading = next((line.lstrip("# ") for line in text if line.startswith("#")), "How far to trust the ranking")
    body = [f"<h2>{html.escape(heading)}</h2>"]
    if fidelity.with_suffix(".csv").is_file():
        frame = pd.read_csv(fidelity.with_suffix(".csv"))
        body.append(frame.to_html(index=False, na_rep="", float_format="{:.4g}".format))
    return body + [f"<p>{html.escape(line[2:])}</p>" for line in text if line.startswith("- ")]


def to_html(title: str, lines: list[str], figures: list[Path], tables: list[Path], fidelity: Path | None = None) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"] + [f"<p>{html.escape(line)}</p>" for line in lines]
    for fig in figures:  # embedded: the page is whole when sent on its own
        data = base64.b64encode(fig.read_bytes()).decode("ascii")
        body += [f"<h2>{html.escape(fig.stem)}</h2>", f'<img src="data:image/png;base64,{data}" style="max-width:100%">']
    for table in tables:
        frame = pd.read_csv(table.with_suffix(".csv"))
        body += [f"<h2>Table: {html.escape(table.stem)}</h2>",
                 frame.to_html(index=False, na_rep="", float_format="{:.4g}".format)]
    if fidelity is not None:
        body += fidelity_html(fidelity)
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder written by run_search.py (runs/<name>)")
    run_dir = parser.parse_args(argv).run_dir
    config = common.load_config(run_dir)
    points = common.load_points(run_dir)
    figures = sorted((run_dir / "figures").glob("*.png"))
    tables = sorted((run_dir / "tables").glob("*.md"))
    if not figures and not tables:
        print(f"note: {run_dir} has no figures or tables yet; run its analysis script(s) first")
    title = f"Run {config['name']}"
    lines = summary(run_dir, config, points)
    fidelity = run_dir / "fidelity.md" if (run_dir / "fidelity.md").is_file() else None
    common.write_atomic(run_dir / "report.md", markdown(title, lines, figures, tables, fidelity))
    common.write_atomic(run_dir / "report.html", to_html(title, lines, figures, tables, fidelity))
    print(f"{run_dir / 'report.md'}\n{run_dir / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
