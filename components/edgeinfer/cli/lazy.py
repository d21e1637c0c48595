"""Subcommand groups imported when they are called, so `edgeinfer run` on a device never imports the cloud
tooling (boto3, the recipe renderer, the Azure SDKs) behind `aws`, `greengrass` or `azure`.

A lazy group is built exactly as ``app.add_typer(sub_app, name=..., help=...)`` builds it eagerly, with the
root's settings, so its help, options, errors and exit codes are the same; `--help` on the root imports
every group to list it. Unknown names still get typer's "Did you mean ...?" over every name, loaded or not.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer import _click as click  # the click that typer vendors
from typer.core import TyperGroup


@dataclass(frozen=True)
class LazyApp:
    """A Typer app at ``module:attr``, mounted as a subcommand group with ``help``."""

    module: str
    attr: str
    help: str


class _Commands(MutableMapping[str, click.Command]):
    """The group's commands: those built already, and lazy ones built on first lookup."""

    def __init__(self, built: MutableMapping[str, click.Command], lazy: Mapping[str, LazyApp],
                 build: Callable[[str, LazyApp], click.Command]) -> None:
        self._built, self._lazy, self._build = built, lazy, build

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built and name in self._lazy:
            self._built[name] = self._build(name, self._lazy[name])
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._built, *self._lazy]))

    def __len__(self) -> int:
        return len(set(self._built) | set(self._lazy))


class LazyGroup(TyperGroup):
    """A TyperGroup whose subclasses name their lazy groups in ``lazy`` (name -> LazyApp), listed after the
    commands registered on the app, in that order."""

    lazy: ClassVar[Mapping[str, LazyApp]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(self.commands, self.lazy, self._build)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # names only: building them is get_command's job

    def _build(self, name: str, spec: LazyApp) -> click.Command:
        sub = getattr(importlib.import_module(spec.module), spec.attr)
        holder = typer.Typer(rich_markup_mode=self.rich_markup_mode, suggest_commands=self.suggest_commands,
                             pretty_exceptions_enable=False, add_completion=False)
        holder.add_typer(sub, name=name, help=spec.help)
        return typer.main.get_group(holder).commands[name]
