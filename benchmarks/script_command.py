"""The click command class of the benchmark scripts: errors a user can cause leave as one line
and exit status 1, as they do from `zoo` (``zoo.cli.errors``); ZOO_DEBUG=1 shows tracebacks."""

from __future__ import annotations

import click

from zoo.cli.errors import debug_requested, one_line, unexpected_line


class ScriptCommand(click.Command):
    """A ``click.Command`` whose errors go through the zoo's one-line funnel."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            if debug_requested():
                raise
            raise click.ClickException(one_line(err) or unexpected_line(err)) from None
