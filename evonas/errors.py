"""Named errors. Every user-facing failure is one of these, with a one-line message
that names the field and the offending value (never an ``assert``)."""
from __future__ import annotations

import sys
from typing import Callable


class EvonasError(Exception):
    """Base of every error evonas raises on purpose. The CLI maps it to exit code 2."""


class FieldError(EvonasError, ValueError):
    """A value is invalid. ``where`` names the object (genome type, config, file),
    ``field`` the field, ``value`` the bad value, ``why`` the violated rule."""

    def __init__(self, where: str, field: str, value: object, why: str):
        self.where, self.field, self.value, self.why = where, field, value, why
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{where}: field '{field}' = {shown}: {why}")

    def __reduce__(self):  # picklable with its four fields (workers, Ray actors send errors back)
        return type(self), (self.where, self.field, self.value, self.why)


class GenomeError(FieldError):
    """A genome (string, dict, file or value) is malformed or violates its space."""


class GraphError(FieldError):
    """A DAG does not follow the IR schema (see ``evonas.graph``)."""


class ConfigError(FieldError):
    """A configuration value, flag or config-file entry is invalid."""


class RegistryError(EvonasError, KeyError):
    """Unknown or duplicate name in a registry (genomes, ops, operators)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(EvonasError):
    """A user plug-in could not be loaded or misbehaved; the message names it."""


def cli_exit_code(body: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a command's ``body``: its own code, 2 with one ``error:`` line for an
    EvonasError (a user mistake: no traceback), 130 on Ctrl-C."""
    try:
        return body()
    except EvonasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
