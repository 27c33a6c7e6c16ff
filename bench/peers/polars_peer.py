"""Polars peer of kappa's benchmark (bench/README.md): the same jobs as kappa's scenarios, in Polars.

Usage (the Python of bench/run.sh's virtualenv, `$BENCH_PYTHON`):
  polars_peer.py csv IN.csv OUT.ndjson
      read the CSV (header row; Polars infers types) and write every row as NDJSON
      (`scan_csv` -> `sink_ndjson`, streaming).
  polars_peer.py parquet IN.parquet OUT.ndjson
      read the Parquet file and write every row as NDJSON (`scan_parquet` -> `sink_ndjson`).
  polars_peer.py window IN.ndjson OUT.ndjson --key origin --ts date --field delay [--float]
      count/avg/max(FIELD) per KEY per 1 h tumbling event-time window over NDJSON whose TS is
      ISO-8601 UTC text (`…T…Z`, optional fraction); one NDJSON row per window:
      {"key", "window_start" (epoch ms), "count", "avg", "max"}. FIELD is read as Int64, or Float64
      with --float.
  polars_peer.py table IN.ndjson OUT_DIR --ts date
      every row of the NDJSON plus `dt` (YYYY-MM-DD of TS, UTC) as a `dt=`-partitioned Parquet table.
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


def parquet_to_ndjson(inp: str, out: str) -> None:
    pl.scan_parquet(inp).sink_ndjson(out)


def iso_time(ts: str) -> pl.Expr:
    """ISO-8601 UTC text (`2001-01-01T00:01:00Z`, `…:01.593Z`) -> Datetime(ms)."""
    return pl.col(ts).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ms")


def window_ndjson(inp: str, out: str, key: str, ts: str, field: str, is_float: bool) -> None:
    schema = {ts: pl.String, key: pl.String, field: pl.Float64 if is_float else pl.Int64}
    df = (
        pl.scan_ndjson(inp, schema=schema)
        .group_by(pl.col(key).alias("key"), iso_time(ts).dt.truncate("1h").dt.epoch("ms").alias("window_start"))
        .agg(pl.len().alias("count"), pl.col(field).mean().alias("avg"), pl.col(field).max().alias("max"))
        .collect()
    )
    df.write_ndjson(out)


def ndjson_table(inp: str, out: str, ts: str) -> None:
    schema = {
        "date": pl.String,
        "delay": pl.Int64,
        "distance": pl.Int64,
        "origin": pl.String,
        "destination": pl.String,
    }
    df = pl.scan_ndjson(inp, schema=schema).with_columns(iso_time(ts).dt.strftime("%Y-%m-%d").alias("dt")).collect()
    df.write_parquet(out, partition_by="dt")


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
    for job in ("csv", "parquet"):
        c = sub.add_parser(job)
        c.add_argument("inp")
        c.add_argument("out")
    wn = sub.add_parser("window")
    wn.add_argument("inp")
    wn.add_argument("out")
    wn.add_argument("--key", required=True)
    wn.add_argument("--ts", required=True)
    wn.add_argument("--field", required=True)
    wn.add_argument("--float", action="store_true")
    t = sub.add_parser("table")
    t.add_argument("inp")
    t.add_argument("out")
    t.add_argument("--ts", required=True)
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
        elif a.job == "parquet":
            parquet_to_ndjson(a.inp, a.out)
        elif a.job == "window":
            window_ndjson(a.inp, a.out, a.key, a.ts, a.field, a.float)
        elif a.job == "table":
            ndjson_table(a.inp, a.out, a.ts)
        else:
            window_table(a.inp, a.out, a.key, a.ts, a.field)
    except Exception as e:  # noqa: BLE001 - one line for the harness's report
        sys.stderr.write(f"polars: {type(e).__name__}: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
