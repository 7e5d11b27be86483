"""Reading settings from environment variables, for fields that declare one.

A settings field is an environment knob when it names its variable as its ``validation_alias``
(``workers: int = Field(16, validation_alias="GPTOSS_WORKERS")``): the name is written once, next
to the default and the validation rules. pydantic-settings parses and validates the value; fields
without an alias are never read from the environment. Constructing a settings object reads
nothing: only ``from_env`` does, so the planner stays a pure function of (spec, settings).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict


class Environment(EnvSettingsSource):
    """pydantic-settings' environment source over ``env`` (``os.environ`` when None).

    Empty values count as unset, as they always have for the operator's variables.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        super().__init__(settings_cls, case_sensitive=False, env_ignore_empty=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._env.items() if v}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.validation_alias is None:
            return None, field_name, False  # not an environment knob
        return super().get_field_value(field, field_name)


class EnvSettings(BaseSettings):
    """Settings whose knobs are environment variables named by their fields' aliases."""

    model_config = SettingsConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # constructing reads no environment; from_env does

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Defaults overridden by the environment (``os.environ``, or ``env`` when given)."""
        return cls(**Environment(cls, env)())
