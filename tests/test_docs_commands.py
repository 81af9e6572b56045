"""The documentation cannot drift from the code.

README.md's console commands are run in order, in a temporary folder, with their training
shortened to one epoch; every `zoo ...` command in docs/*.md is parsed by the real command
line (options, choices, numbers), without running it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```console\n(.*?)```", re.S)
# Training commands of the README tour, shortened: one epoch, whatever the README says.
TINY_EPOCHS = {"--epochs": "1", "--head-epochs": "1", "--fine-tune-epochs": "1"}
DEFAULT_EPOCHS = {"train": ["--epochs", "1"], "tune": ["--epochs", "1"],
                  "transfer": ["--head-epochs", "1", "--fine-tune-epochs", "1"]}


def console_commands(markdown: str) -> list[list[str]]:
    """The `$ zoo ...` lines of a page's console blocks, in order, comments dropped."""
    commands = []
    for block in BLOCK.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines joined
            if line.startswith("$ zoo "):
                commands.append(shlex.split(line[2:], comments=True)[1:])
    return commands


def shortened(args: list[str]) -> list[str]:
    """The command with every epoch count set to one (added where the default would apply)."""
    args = list(args)
    for i, arg in enumerate(args[:-1]):
        if arg in TINY_EPOCHS:
            args[i + 1] = TINY_EPOCHS[arg]
    for option, value in zip(DEFAULT_EPOCHS.get(args[0], [])[::2],
                             DEFAULT_EPOCHS.get(args[0], [])[1::2]):
        if option not in args:
            args += [option, value]
    return args


# The README's commands in order, in one fresh interpreter (not pytest's, whose imports and
# Keras state other tests changed), each through click's runner as the `zoo` script calls it:
# one TensorFlow import for the tour instead of one per command.
README_SCRIPT = """
import json, sys
from click.testing import CliRunner
from zoo.cli import main
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    if result.exit_code != 0:
        print(f"zoo {' '.join(args)}: exit {result.exit_code}\\n{result.output[-3000:]}")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback
            traceback.print_exception(result.exception)
        sys.exit(1)
    print(f"ran: zoo {' '.join(args)}", flush=True)
"""


def test_readme_console_commands_run_in_order(tmp_path):
    commands = [shortened(args) for args in console_commands((REPO / "README.md").read_text())]
    assert len(commands) >= 5, "the README's console block went missing"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", README_SCRIPT, json.dumps(commands)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("ran: zoo ") == len(commands), done.stdout


def _parse(args: list[str]) -> None:
    """Parse ``zoo ARGS`` as the real CLI would (options, choices, numbers), without running."""
    ctx = click.Context(main, info_name="zoo")
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"zoo {' '.join(args)} names no command"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"zoo has no command {' '.join(args[:len(args) - len(rest)])!r}"
        ctx, command = click.Context(sub, info_name=name, parent=ctx), sub
    try:
        command.make_context(ctx.info_name, rest, parent=ctx.parent)
    except click.BadParameter as err:
        # A path the page's reader creates first (a run folder, an image) may not exist here.
        if err.param is None or not isinstance(err.param.type, click.Path):
            raise


DOC_COMMANDS = [(page.name, args) for page in sorted((REPO / "docs").glob("*.md"))
                for args in console_commands(page.read_text())]


@pytest.mark.parametrize("page,args", DOC_COMMANDS,
                         ids=[f"{page}: zoo {' '.join(args)}"[:80] for page, args in DOC_COMMANDS])
def test_docs_commands_parse(page, args):
    if "..." in args:  # "zoo transfer X --weights mnist ...": the page elides the rest
        args = args[:args.index("...")]
    try:
        _parse(args)
    except click.UsageError as err:
        pytest.fail(f"docs/{page}: `zoo {' '.join(args)}` does not parse: {err.format_message()}")
