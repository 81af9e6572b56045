"""The `zoo` command: a thin click layer over library functions that tests call directly.

Each module in this package holds the commands of one concern and lists them in ``COMMANDS``.
Modules are imported when the command line is parsed, but they import Keras and TensorFlow
only inside the commands, so `zoo --help` and `zoo list` stay fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys

import click

from zoo.cli.errors import debug_requested, one_line, unexpected_line
from zoo.cli.quiet_tensorflow import hide_tensorflow_start_up

COMMAND_MODULES = ("models", "train", "recipes", "transfer", "tune", "export", "bench", "viz",
                   "data", "weights")


class ZooGroup(click.Group):
    """Collects the commands from the command modules; every error leaves as one line."""

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
        except BrokenPipeError:
            # `zoo list | head`: the reader left; stop quietly as other Unix tools do.
            _silence_stdout()
            raise click.exceptions.Exit(141) from None
        except Exception as err:
            # The one place errors become messages (see zoo.cli.errors); --debug shows all.
            if debug_requested(ctx.meta.get(DEBUG_KEY, False)):
                raise
            message = one_line(err)
            if getattr(err, "exit_now", False):
                # A multi-process run whose partner is gone: leave now rather than wait
                # (minutes) in the backend's shutdown for it.
                click.echo(f"Error: {message or unexpected_line(err)}", err=True)
                sys.stdout.flush()
                os._exit(1)
            raise click.ClickException(message or unexpected_line(err)) from None


DEBUG_KEY = "zoo.debug"


def _silence_stdout() -> None:
    # Python would otherwise report the broken pipe again when it flushes stdout at exit.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (tests)
        pass


def _remember_debug(ctx: click.Context, _param, value: bool) -> bool:
    ctx.meta[DEBUG_KEY] = value
    return value


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnn-zoo")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
              callback=_remember_debug,
              help="Show the full traceback of an error (also ZOO_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context) -> None:
    """cnn-zoo: pick a CNN from the zoo, train it with recipes, transfer, tune and export it."""
    if not debug_requested(ctx.meta.get(DEBUG_KEY, False)):
        hide_tensorflow_start_up()
