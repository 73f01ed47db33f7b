"""Print every base and EfficientNet-B0..B7 with measured vs published params and GFLOPs.

    python -m models.zoo [--csv PATH] [--table3]
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from models.bases import BASES
from models.reference import EFFICIENTNET_OFFICIAL, PAPER_TABLE3, PUBLISHED
from models.scaling import scaled_resolution

ZOO_COLUMNS = [
    "model", "resolution", "params", "gflops", "ref_params", "ref_resolution", "ref_gflops", "params_dev_pct",
    "gflops_dev_pct",
]


def zoo_rows() -> list[tuple[str, str, float, float, int]]:
    """(model, base, depth, width, resolution) for every base at 224 px and B1..B7."""
    rows = [(name, name, 1.0, 1.0, spec.resolution) for name, spec in BASES.items()]
    rows += [
        (name, "efficientnet_b0", depth, width, res)
        for name, (width, depth, res) in EFFICIENTNET_OFFICIAL.items()
        if name != "efficientnet_b0"
    ]
    return rows


def zoo_table() -> pd.DataFrame:
    from models.complexity import measure  # fvcore is only needed when counting

    records = []
    for model, base, depth, width, res in zoo_rows():
        c = measure(base, depth, width, res)
        ref = PUBLISHED[model]
        gflops = c.flops / 1e9
        at_ref = gflops if ref.resolution == res else measure(base, depth, width, ref.resolution).flops / 1e9
        records.append(
            dict(
                model=model, resolution=res, params=c.params, gflops=round(gflops, 3),
                ref_params=ref.params, ref_resolution=ref.resolution, ref_gflops=ref.gflops,
                params_dev_pct=round(100 * (c.params / ref.params - 1), 2),
                gflops_dev_pct=round(100 * (at_ref / ref.gflops - 1), 2),  # at the reference's resolution
            )
        )
    return pd.DataFrame.from_records(records, columns=ZOO_COLUMNS)


def table3_table() -> pd.DataFrame:
    """The paper's Table 3 scaling rows that give (d, w, r): measured vs printed GFLOPs."""
    from models.complexity import measure

    records = []
    for row in PAPER_TABLE3:
        if row.d != row.d:  # compound coefficients not given by the paper
            continue
        res = scaled_resolution(BASES[row.base].resolution, row.r)
        gflops = measure(row.base, row.d, row.w, res).flops / 1e9
        records.append(
            dict(model=row.base, method=row.method, d=row.d, w=row.w, r=row.r, resolution=res,
                 gflops=round(gflops, 3), paper_gflops=row.gflops,
                 gflops_dev_pct=round(100 * (gflops / row.gflops - 1), 1))
        )
    return pd.DataFrame.from_records(records)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    parser.add_argument("--table3", action="store_true", help="also print the paper's Table 3 scaling rows")
    args = parser.parse_args(argv)

    table = zoo_table()
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.table3:
        print()
        print(table3_table().to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
