"""The services the switch runs beside the SIP core, built from the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dialplan.yamlsource import YamlSource

if TYPE_CHECKING:
    from switch.app import Switch


def build_services(switch: Switch, source: YamlSource) -> list[Any]:
    return []
