"""Command lines explain themselves: every option has help text saying what it does (and its unit, and when to
change it, where that applies)."""

from __future__ import annotations

import argparse

import pytest

from stargan import evaluate, prepare, translate


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and its sub-commands' parsers."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser, *(p for s in subs for p in s.choices.values())]


@pytest.mark.parametrize("module", [translate, prepare, evaluate], ids=lambda m: m.__name__)
def test_every_option_has_help(module) -> None:
    parser: argparse.ArgumentParser = module.build_parser()
    bare = [a.dest for p in _parsers(parser) for a in p._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and len((a.help or "").split()) < 5]
    assert not bare, f"{module.__name__}: options without a real help text: {bare}"
    parser.format_help()  # every %(default)s and the like renders
