"""`central-hub nid-simulator`: run the EC stand-in, or write a synthetic population for it."""

from __future__ import annotations

import re
from pathlib import Path

import click

from central_hub.nid.population import generate, write_population

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*$")


def _parse_rate(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    match = _RATE.match(value)
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter("expected requests per second, for example 20/s")
    return float(match.group(1))


@click.command(
    "nid-simulator",
    help="""Run a stand-in for the Election Commission's NID verification service, or make its population.

    \b
    Example: make a synthetic population (JSON lines, Bangla and English names, 10/13/17-digit NIDs):
      central-hub nid-simulator --make-population people.jsonl --count 5000
    Serve it with 50 ms latency, 2% injected 503s and at most 100 requests/s:
      central-hub nid-simulator --population people.jsonl --port 8700 --latency-ms 50 \\
          --fail-rate 0.02 --rate-limit 100/s
    Take it down while running: touch the --outage-file, or POST {"down": true} to /admin/outage.
    """,
)
@click.option("--population", type=click.Path(dir_okay=False, path_type=Path), help="Population file to serve.")
@click.option("--make-population", "make_population", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a synthetic population to this file and exit.")  # fmt: skip
@click.option("--count", type=click.IntRange(1), default=1000, show_default=True, help="People to generate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed for the population and injected faults.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(0), default=50.0, show_default=True,
              help="Delay before each answer.")  # fmt: skip
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of requests answered 503.")  # fmt: skip
@click.option("--rate-429", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction answered 429 regardless of load.")  # fmt: skip
@click.option("--timeout-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction that hang for --timeout-sleep seconds (longer than a client's timeout).")  # fmt: skip
@click.option("--timeout-sleep", type=click.FloatRange(0), default=15.0, show_default=True)
@click.option("--rate-limit", callback=_parse_rate, help="Requests per second accepted (e.g. 100/s); beyond: 429.")
@click.option("--retry-after", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Seconds a 429 answer asks the client to wait.")  # fmt: skip
@click.option("--outage-file", type=click.Path(dir_okay=False, path_type=Path),
              help="While this file exists, every verification answers 503.")  # fmt: skip
@click.option("--api-key-env", default="NID_SIMULATOR_API_KEY", show_default=True,
              help="Environment variable holding the API key clients must send (unset: no key needed).")  # fmt: skip
@click.option("--threads", type=click.IntRange(1), default=64, show_default=True, help="Server threads.")
def nid_simulator_command(
    population: Path | None,
    make_population: Path | None,
    count: int,
    seed: int,
    host: str,
    port: int,
    latency_ms: float,
    fail_rate: float,
    rate_429: float,
    timeout_rate: float,
    timeout_sleep: float,
    rate_limit: float | None,
    retry_after: float,
    outage_file: Path | None,
    api_key_env: str,
    threads: int,
) -> None:
    if make_population is not None:
        written = write_population(make_population, generate(count, seed=seed))
        click.echo(f"wrote {written} people to {make_population}")
        return
    if population is None:
        raise click.UsageError("give --population FILE to serve (or --make-population FILE to create one)")
    if not population.exists():
        raise click.BadParameter(f"{population} does not exist", param_hint="--population")

    import os

    import waitress

    from central_hub.nid.simulator import create_app

    try:
        app = create_app(
            {
                "NID_POPULATION": population,
                "NID_FAULTS": {
                    "latency_ms": latency_ms,
                    "fail_rate": fail_rate,
                    "rate_429": rate_429,
                    "timeout_rate": timeout_rate,
                    "timeout_sleep_s": timeout_sleep,
                    "rate_limit": rate_limit,
                    "retry_after_s": retry_after,
                },
                "NID_API_KEY": os.environ.get(api_key_env) or None,
                "NID_OUTAGE_FILE": outage_file,
                "NID_SEED": seed,
            }
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"NID simulator on http://{host}:{port} ({population})", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, connection_limit=max(100, threads * 2),
                   ident="nid-simulator")  # fmt: skip
