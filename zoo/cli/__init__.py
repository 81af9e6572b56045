"""The `zoo` command: a thin click layer over library functions that tests call directly.

Each module in this package holds the commands of one concern and lists them in ``COMMANDS``.
Modules are imported when the command line is parsed, but they import Keras and TensorFlow
only inside the commands, so `zoo --help` and `zoo list` stay fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import click

COMMAND_MODULES = ("models", "train", "recipes", "transfer", "tune", "export", "bench", "viz",
                   "data")
# Errors users can fix: printed as one line, exit status 1, no traceback (ZOO_DEBUG=1 shows it).
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError, RuntimeError, ImportError)


class ZooGroup(click.Group):
    """Collects the commands from the command modules and turns user errors into one line."""

    def list_commands(self, ctx):
        return sorted(self._commands())

    def get_command(self, ctx, name):
        return self._commands().get(name)

    def _commands(self) -> dict[str, click.Command]:
        commands = {}
        for module in COMMAND_MODULES:
            full = f"{__name__}.{module}"
            if importlib.util.find_spec(full) is None:
                continue
            for command in importlib.import_module(full).COMMANDS:
                commands[command.name] = command
        return commands

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except USER_ERRORS as err:
            if os.environ.get("ZOO_DEBUG"):
                raise
            message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            raise click.ClickException(f"{type(err).__name__}: {message}") from None


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnn-zoo")
def main() -> None:
    """cnn-zoo: pick a CNN from the zoo, train it with recipes, transfer, tune and export it."""
