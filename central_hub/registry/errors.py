"""Exceptions of the registry-merging package (each with a stable ``code``)."""

from __future__ import annotations


class RegistryError(Exception):
    code = "registry_error"


class ModelError(RegistryError):
    """The shipped or given matching model is missing, malformed or built for other features."""

    code = "registry_model"


class InputError(RegistryError):
    """A dedupe / evaluation input file cannot be read or lacks required columns."""

    code = "registry_input"


class RulesError(RegistryError):
    """The double-dipping rules table is malformed."""

    code = "registry_rules"
