"""Fixtures for the NID tests: a seeded synthetic population and the simulator on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

import pytest

from central_hub.nid.population import PopulationRecord, generate
from central_hub.nid.simulator import EXTENSION, Faults, ServerThread, SimulatorState, create_app


@pytest.fixture(scope="session")
def population() -> list[PopulationRecord]:
    return list(generate(300, seed=7))


class RunningSimulator:
    def __init__(self, server: ServerThread, state: SimulatorState) -> None:
        self.server = server
        self.url = server.url
        self.state = state

    def set_faults(self, **changes: object) -> None:
        errors = self.state.faults.update(dict(changes))
        assert not errors, errors

    def reset(self) -> None:
        defaults = Faults()
        for f in fields(defaults):
            setattr(self.state.faults, f.name, getattr(defaults, f.name))
        self.state.counters.clear()
        self.state.api_key = None


@pytest.fixture(scope="session")
def _simulator_server(population: list[PopulationRecord]) -> Iterator[RunningSimulator]:
    app = create_app({"NID_POPULATION": population, "NID_SEED": 3})
    with ServerThread(app) as server:
        yield RunningSimulator(server, app.extensions[EXTENSION])


@pytest.fixture
def simulator(_simulator_server: RunningSimulator) -> Iterator[RunningSimulator]:
    """The shared simulator, with faults reset before and after each test."""
    _simulator_server.reset()
    yield _simulator_server
    _simulator_server.reset()
