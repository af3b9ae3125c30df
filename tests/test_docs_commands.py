"""Every command in the README's and the docs' shell blocks exists as it is written: its
program, its subcommand, its options and the stages it names. Nothing is run: a block
that trains or pushes would take far too long, but a renamed option or stage fails here."""

import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import typer
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks/README.md"]
# programs outside the project, which the pages use as their own documentation says
EXTERNAL = {"git", "gto", "source", "apt-get", "apt", "cd", "cp", "export", "echo", "ssh"}
# programs of the project's environment, other than the ones checked below
ENVIRONMENT = {"pytest", "torchrun"}
SHELL_WORDS = {"for", "do", "done", "then", "fi", "if", "else"}


def shell_blocks(page: Path) -> list[str]:
    return re.findall(r"^```(?:bash|sh)\n(.*?)^```", page.read_text(), flags=re.S | re.M)


def simple_commands(block: str) -> list[list[str]]:
    """The block's commands as argument lists: continuation lines joined, comments dropped,
    split at pipes, `&&` and `;`, variable assignments in front dropped."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\$\((.*?)\)", r"; \1 ;", line)  # a substitution's command, apart
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if set(token) <= set(";&|"):
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words = words[1:]
                if words and words[0] not in SHELL_WORDS:
                    commands.append(words)
                words = []
            else:
                words.append(token)
    return commands


COMMANDS = [
    pytest.param(words, id=f"{page.relative_to(ROOT)}: {' '.join(words)}"[:100])
    for page in PAGES
    for block in shell_blocks(page)
    for words in simple_commands(block)
]


def test_the_pages_have_commands_to_check():
    assert len(COMMANDS) > 40
    assert any(words[0] == "vaelab" for words in (p.values[0] for p in COMMANDS))


@cache
def vaelab_command():
    """The click command typer builds for `vaelab` (typer carries its own click)."""
    from vaelab.tools.command import app

    return typer.main.get_command(app)


def check_vaelab(args: list[str]) -> None:
    """Parse `args` as click would: an unknown subcommand or option, or a missing argument,
    raises its usage error."""
    command = vaelab_command()
    context = command.make_context("vaelab", list(args))
    while hasattr(command, "resolve_command"):  # a group: on to its subcommand
        rest = [*context._protected_args, *context.args]
        name, command, rest = command.resolve_command(context, rest)
        context = command.make_context(name, rest, parent=context)


@cache
def stage_names() -> frozenset[str]:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        names = set()
        for stage in repo.index.stages:
            pipeline = Path(stage.dvcfile.path).relative_to(ROOT).as_posix()
            names.add(f"{pipeline}:{stage.name}")
            if pipeline == "dvc.yaml":
                names.add(stage.name)
        return frozenset(names)


def check_dvc(args: list[str]) -> None:
    from dvc.cli import parse_args

    parsed = parse_args(args)  # argparse: an unknown command or option exits
    if args[0] == "repro" or args[:2] == ["exp", "run"]:
        for target in getattr(parsed, "targets", None) or []:
            if target.endswith("dvc.yaml"):
                assert (ROOT / target).is_file(), target
            else:
                assert target in stage_names(), f"no stage {target!r} in the pipelines"


def check_python(args: list[str]) -> None:
    if args[:2] == ["-m", "pip"]:
        return
    if args[0] == "-m":
        module = args[1]
        assert module.startswith("benchmarks."), f"python -m {module}: use the vaelab command"
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
    else:
        assert (ROOT / args[0]).is_file(), args[0]


def check_uv(args: list[str]) -> None:
    if args[0] == "run":
        words = args[1:]
        while words and words[0].startswith("--"):  # uv run's own options, with values
            words = words[2:] if words[0] == "--with" else words[1:]
        check(words)
    else:
        assert args[0] == "sync", args


def check(words: list[str]) -> None:
    program, args = words[0], words[1:]
    if program in EXTERNAL | ENVIRONMENT:
        return
    checks = {"vaelab": check_vaelab, "dvc": check_dvc, "uv": check_uv}
    if program in ("python", "python3"):
        check_python(args)
    elif program in checks:
        checks[program](args)
    else:
        raise AssertionError(f"{program}: not a command the pages may use; add it here")


@pytest.mark.parametrize("words", COMMANDS)
def test_a_documented_command_exists_as_written(words):
    try:
        check(words)
    except SystemExit as exc:  # argparse's and click's way of refusing
        raise AssertionError(f"refused: {' '.join(words)}") from exc
    except Exception as exc:
        if not hasattr(exc, "format_message"):  # not one of click's usage errors
            raise
        raise AssertionError(f"refused: {' '.join(words)}: {exc.format_message()}") from exc
