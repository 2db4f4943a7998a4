"""Where settings come from, and where a wrong one was given.

The ``PEERSCOPE_*`` variables are read as pydantic-settings reads them, and besides: a list
setting takes comma-separated items as well as JSON, and a variable that is no setting is
warned about, with the closest name there is. A TOML file that does not parse is named with
the line and column. A value that fails validation is traced back to where it was given: an
argument, a variable or the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pydantic_settings
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, TomlConfigSettingsSource

ENV_PREFIX = "PEERSCOPE_"

Location = Sequence[str | int]  # where a value sits in the settings: ("peers", 0, "address")


class SettingsError(ValueError):
    """Invalid settings; the message has one line per problem, ``where: what is wrong``."""


class SettingsWarning(UserWarning):
    """Settings that work but are probably not what was meant (a misspelled variable, a
    short token)."""


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` was most likely meant to be, if one is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return matches[0] if matches else None


def fields_of(group: Any) -> dict[str, Any]:
    """The fields of a settings group (a model or a dataclass) by name, with their types."""
    if isinstance(group, type) and issubclass(group, BaseModel):
        return {name: field.annotation for name, field in group.model_fields.items()}
    if isinstance(group, type) and dataclasses.is_dataclass(group):
        hints = typing.get_type_hints(group)
        return {field.name: hints[field.name] for field in dataclasses.fields(group) if field.init}
    return {}


def item_type(annotation: Any) -> Any:
    """The item type of a ``list[...]`` (or optional list) type, else None."""
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            if typing.get_origin(member) is list:
                return typing.get_args(member)[0]
    return None


def variables_of(group: Any, prefix: str) -> Iterator[str]:
    """Every variable name a settings group reads, nested groups included."""
    for name, annotation in fields_of(group).items():
        yield prefix + name.upper()
        yield from variables_of(annotation, f"{prefix}{name.upper()}__")


class Environment(EnvSettingsSource):
    """``PEERSCOPE_*`` variables, as pydantic-settings reads them, and besides: any list
    setting takes comma-separated items as well as JSON, and a variable that is no setting
    is warned about (as TOML refuses an unknown key) rather than ignored."""

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except pydantic_settings.SettingsError as error:
            # Its message names neither the variable nor what is wrong; ours, its cause, does.
            if isinstance(error.__cause__, SettingsError):
                raise error.__cause__ from None
            raise

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as error:
            variable = f"{self.env_prefix}{field_name}".upper()
            raise SettingsError(
                f"{variable}: not valid JSON ({error}); give a JSON value"
                + (" or comma-separated items" if item_type(field.annotation) is not None else "")
            ) from None

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        if (
            isinstance(value, str)
            and field is not None
            and item_type(field.annotation) is not None
            and not value.lstrip().startswith("[")
        ):
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().decode_complex_value(field_name, field, value)  # type: ignore[arg-type]

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.env_vars = self._settings_only(self.env_vars)

    def _settings_only(self, variables: Mapping[str, str | None]) -> dict[str, str | None]:
        """``variables`` less those with the prefix that are no setting, each warned about:
        in a group (``PEERSCOPE_QUALITY__...``) they would fail as an unexpected key, at the
        top level they would be ignored without a word."""
        prefix = self.env_prefix.upper()
        known = {name[len(prefix) :] for name in variables_of(self.settings_cls, prefix)}
        unknown = sorted(
            name
            for name in variables
            if name.upper().startswith(prefix) and name.upper()[len(prefix) :] not in known
        )
        for name in unknown:
            guess = closest(name.upper()[len(prefix) :], known)
            hint = f"did you mean {prefix}{guess}?" if guess else "it is ignored"
            warnings.warn(f"{name.upper()} is not a setting; {hint}", SettingsWarning, stacklevel=2)
        return {name: value for name, value in variables.items() if name not in unknown}


def toml_source(settings_cls: type[BaseSettings], path: Path) -> TomlConfigSettingsSource:
    """``path`` read as a source of settings; SettingsError naming the file, and the line
    and column, if it does not parse."""
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else None
        raise SettingsError(f"{path}: cannot be read: {reason or error}") from None


class Sources:
    """Where a value of :meth:`Settings.load` came from, in the order they count: an
    override, a variable, the config file."""

    def __init__(
        self,
        overrides: Mapping[str, Any],
        argument_names: Mapping[str, str],
        environ: Mapping[str, str],
        config_file: Path | None,
    ) -> None:
        self._overrides = overrides
        self._argument_names = argument_names
        self._variables = {name.upper() for name in environ if name.upper().startswith(ENV_PREFIX)}
        self._config_file = config_file

    def __call__(self, path: Location, missing: bool) -> str | None:
        """``--option``, ``VARIABLE`` or ``file: field`` for the value at ``path`` (the
        field too where the variable does not name it all); None if none gave it."""
        if not path:
            return None
        field = dotted(path)
        if _holds(self._overrides, path, missing):
            return self._argument_names.get(str(path[0]), field)
        names: list[str] = []  # the variable's part of the path: up to a list index
        for part in path:
            if not isinstance(part, str):
                break
            names.append(part)
        for end in range(len(names), 0, -1):
            variable = ENV_PREFIX + "__".join(names[:end]).upper()
            if variable in self._variables:
                return variable if end == len(path) else f"{variable}: {field}"
        if self._config_file is not None and _holds(self._file_data(), path, missing):
            return f"{self._config_file}: {field}"
        return None

    def _file_data(self) -> dict[str, Any]:
        assert self._config_file is not None
        try:
            with self._config_file.open("rb") as file:
                return tomllib.load(file)
        except (OSError, ValueError):  # read once already; changed since, it cannot tell
            return {}


def _holds(data: Any, path: Location, missing: bool) -> bool:
    """Whether ``data`` (an override or a file's table) gave the value at ``path``; for a
    ``missing`` one, the table it is missing from."""
    for at, part in enumerate(path):
        if isinstance(data, dict):
            if part not in data:
                return missing and at == len(path) - 1
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int):
            if part >= len(data):
                return False
            data = data[part]
        else:  # given whole (a peer as its address), checked part by part
            return True
    return True


def dotted(path: Location) -> str:
    """``peers[0].address``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text
