"""`facedb --help` describes the tool, and every option of every command says what it does."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from facedb import __version__
from facedb.cli import build_parser, main


def all_parsers(
    parser: argparse.ArgumentParser, path: str = "facedb"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, f"{path} {name}")


def test_every_option_has_help() -> None:
    missing = [
        f"{path} {'/'.join(action.option_strings) or action.dest}"
        for path, parser in all_parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
    ]
    assert missing == []


def test_every_command_has_a_summary() -> None:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            assert set(summaries) == set(action.choices) and all(summaries.values())


def test_the_top_level_help_describes_the_tool(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "face-search database" in text and "identify" in text and "verify" in text
    assert "exit codes: 0 ok" in text and "3 no usable face" in text
    assert "module" not in text and "register" not in text  # not the source layout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"facedb {__version__}"
