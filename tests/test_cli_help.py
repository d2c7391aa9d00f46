"""Every command's options explain themselves, and a net argument is called NET everywhere."""

import argparse

import pytest

from caffeconf.cli import _available, build_parser


def command_parser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(name)
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("name", sorted(_available()))
def test_every_option_has_help(name):
    parser = command_parser(name)
    silent = [a.option_strings[0] if a.option_strings else a.dest for a in parser._actions
              if not isinstance(a, argparse._HelpAction) and not a.help]
    assert silent == [], f"`caffeconf {name}` options without help: {silent}"


# The positionals that name a net; every other positional (images, outputs) has its own name.
NET_DESTS = {"net", "a", "b", "file", "files", "input", "config"}


@pytest.mark.parametrize("name", sorted(_available()))
def test_a_net_argument_is_called_NET(name):
    parser = command_parser(name)
    for action in parser._actions:
        if not action.option_strings and action.dest in NET_DESTS:
            assert action.metavar in ("NET", "NET_A", "NET_B"), (name, action.dest, action.metavar)
