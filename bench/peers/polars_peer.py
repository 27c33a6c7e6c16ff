"""Polars peer of kappa's benchmark (bench/README.md): the same jobs as kappa's scenarios, in Polars.

Usage (the Python of bench/run.sh's virtualenv, `$BENCH_PYTHON`):
  polars_peer.py csv IN.csv OUT.ndjson
      read the CSV (header row; Polars infers types) and write every row as NDJSON
      (`scan_csv` -> `sink_ndjson`, streaming).
  polars_peer.py window-table IN.parquet OUT_DIR --key origin --ts date --field delay
      count/avg/max(FIELD) per KEY per 1 h tumbling event-time window (TS truncated to the hour),
      written as a `dt=YYYY-MM-DD`-partitioned Parquet table (hive layout, one folder per day of
      the window start) with columns KEY, window_start, window_end, count, avg_FIELD, max_FIELD.

Polars uses all cores (its default thread pool). Exits 1 with Polars' message on error.
"""

import argparse
import sys

import polars as pl


def csv_to_ndjson(inp: str, out: str) -> None:
    pl.scan_csv(inp).sink_ndjson(out)


def window_table(inp: str, out: str, key: str, ts: str, field: str) -> None:
    start = pl.col(ts).dt.truncate("1h")
    df = (
        pl.scan_parquet(inp)
        .group_by(pl.col(key), start.alias("window_start"))
        .agg(
            pl.len().alias("count"),
            pl.col(field).mean().alias(f"avg_{field}"),
            pl.col(field).max().alias(f"max_{field}"),
        )
        .with_columns(
            (pl.col("window_start") + pl.duration(hours=1)).alias("window_end"),
            pl.col("window_start").dt.strftime("%Y-%m-%d").alias("dt"),
        )
        .collect()
    )
    df.write_parquet(out, partition_by="dt")


def main() -> None:
    p = argparse.ArgumentParser(prog="polars_peer.py")
    sub = p.add_subparsers(dest="job", required=True)
    c = sub.add_parser("csv")
    c.add_argument("inp")
    c.add_argument("out")
    w = sub.add_parser("window-table")
    w.add_argument("inp")
    w.add_argument("out")
    w.add_argument("--key", required=True)
    w.add_argument("--ts", required=True)
    w.add_argument("--field", required=True)
    a = p.parse_args()
    try:
        if a.job == "csv":
            csv_to_ndjson(a.inp, a.out)
        else:
            window_table(a.inp, a.out, a.key, a.ts, a.field)
    except Exception as e:  # noqa: BLE001 - one line for the harness's report
        sys.stderr.write(f"polars: {type(e).__name__}: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
