#!/usr/bin/env bash
# Refresh the figures in bench/README.md: `bash bench/run_all.sh` (about 30 min on 2 cores).
# Runs every bench, then replaces the block between the figures markers with their output.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp)
{
  echo "date: $(date -u +%Y-%m-%d), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  python throughput.py; echo
  python limits.py; echo
  python ablation.py; echo
  python checkpoint.py; echo
  python search_time.py
  echo; echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
python - "$out" <<'PY'
import re, sys
from pathlib import Path
figures = Path(sys.argv[1]).read_text()
readme = Path("README.md")
block = f"<!-- figures -->\n```\n{figures.rstrip()}\n```\n<!-- /figures -->"
readme.write_text(re.sub(r"<!-- figures -->.*<!-- /figures -->", lambda _: block, readme.read_text(), flags=re.S))
PY
rm -f "$out"
