"""Registry-merging commands of `central-hub` (added to the main group in central_hub/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from central_hub.registry.errors import RegistryError


def _model(path: str | None):  # type: ignore[no-untyped-def]
    from central_hub.registry.matcher import Model

    return Model.load(Path(path) if path else None)


@click.command("registry-synth", help="Write a synthetic Bangladeshi population with ground truth.\n\n"
               "Example: central-hub registry-synth --count 20000 --out people.parquet")
@click.option("--count", type=click.IntRange(min=1), default=20000, show_default=True, help="Number of records.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .parquet, .csv or .jsonl.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed (same seed, same data).")
@click.option("--typos", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of records with a typing error in the person's own name (tagged tag_name_typo).")
def registry_synth(count: int, out: Path, seed: int, typos: float) -> None:
    from central_hub.registry.synth import generate, write_records

    if out.suffix.lower() not in (".parquet", ".csv", ".jsonl"):
        raise click.BadParameter("use a .parquet, .csv or .jsonl file name", param_hint="--out")
    records = generate(count, seed=seed, typo_p=typos)
    write_records(records, out)
    click.echo(f"wrote {len(records)} records of {len({r['true_person_id'] for r in records})} persons to {out}")


@click.command("registry-eval", help="Match a synthetic population incrementally and print precision, recall "
               "and F1, overall and per slice, for auto-link alone and auto-link + review.\n\n"
               "Example: central-hub registry-eval --count 20000")
@click.option("--count", type=click.IntRange(min=10), default=20000, show_default=True, help="Number of records.")
@click.option("--seed", type=int, default=99, show_default=True,
              help="Random seed (keep it apart from the training seeds 11 and 12).")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Model file (default: the shipped model.json).")
@click.option("--typos", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of records with a typing error in the person's own name (the name_typos slice).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def registry_eval(count: int, seed: int, model_path: str | None, typos: float, as_json: bool) -> None:
    from central_hub.registry.evaluate import evaluate, format_report
    from central_hub.registry.synth import generate

    try:
        res = evaluate(generate(count, seed=seed, typo_p=typos), _model(model_path))
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(res, indent=1) if as_json else format_report(res))


@click.command("registry-train", help="Train the matching model with Splink (DuckDB) on synthetic data, "
               "calibrate its thresholds on a second synthetic set, and write it.\n\n"
               "Example: central-hub registry-train --count 30000 --out central_hub/registry/model.json")
@click.option("--count", type=click.IntRange(min=1000), default=30000, show_default=True,
              help="Records for training the m/u parameters with Splink.")
@click.option("--calibrate-count", type=click.IntRange(min=1000), default=100000, show_default=True,
              help="Records of a second synthetic set for calibrating the thresholds (larger is closer to "
                   "national scale, where common names collide).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Model file to write.")
def registry_train(count: int, calibrate_count: int, out: Path) -> None:
    from central_hub.registry.train import build, write

    model = build(count, calibrate_count)
    write(model, out)
    click.echo(f"wrote {out}: version {model['model_version']}, thresholds {model['thresholds']}")


@click.command("dedupe", help="Batch-deduplicate a registry extract, or the hub store itself, with Splink on "
               "DuckDB and reconcile the clusters with the incremental ones (registry_id column, the hub's "
               "incremental clusters with --db, or the incremental matcher run over the file); prints a summary "
               "and writes the clusters and the merge/split report. Changes nothing.\n\n"
               "Example: central-hub dedupe --input persons.parquet --output clusters.csv\n\n"
               "Example: central-hub dedupe --db sqlite:///hub.db --output clusters.csv")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Records: .parquet, .csv or .jsonl with record_id and the person fields.")
@click.option("--db", "db_url", default=None,
              help="Read the persons from this hub database (sqlite:///hub.db or postgresql://...) instead.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write record_id,cluster_id here (.csv); the report goes next to it "
                   "as <name>.report.json.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Model file (default: the shipped model.json).")
def dedupe(input_path: Path | None, db_url: str | None, output: Path | None, model_path: str | None) -> None:
    from central_hub.registry.dedupe import run
    from central_hub.registry.synth import read_records

    if (input_path is None) == (db_url is None):
        raise click.UsageError("give exactly one of --input FILE and --db URL")
    unindexed = None
    try:
        if db_url is not None:
            records, unindexed = _hub_records(db_url)
        else:
            assert input_path is not None
            records = read_records(input_path)
        result = run(records, _model(model_path))
    except (RegistryError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    summary = result.summary()
    if unindexed is not None:
        summary["not_yet_matched_at_the_hub"] = unindexed
    click.echo(json.dumps(summary))
    if output:
        with output.open("w", encoding="utf-8") as f:
            f.write("record_id,cluster_id\n")
            for rid, c in sorted(result.clusters.items()):
                f.write(f"{rid},{c}\n")
        report = output.with_suffix(".report.json")
        report.write_text(json.dumps({"summary": summary, "merges": result.merges, "splits": result.splits},
                                     indent=1), encoding="utf-8")
        click.echo(f"wrote {output} and {report}")


def _hub_records(db_url: str) -> tuple[list[dict[str, Any]], int]:
    from central_hub.errors import HubError
    from central_hub.registry.hub_extract import read_hub
    from central_hub.store import SqlHubStore

    try:
        store = SqlHubStore(db_url)
        store.check_schema()
    except HubError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        return read_hub(store)
    finally:
        store.close()


COMMANDS = [registry_synth, registry_eval, registry_train, dedupe]
