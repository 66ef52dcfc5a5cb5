"""Pure multi-site dialplan: YAML model and validation, number normalisation, routing.

    plan = load_plan("config/example.yaml")          # ConfigError lists every issue
    decision = route(plan, CallContext(user, None, "0612345678", now))
"""

from .holder import PlanHolder
from .loader import BUILTIN_PROFILES, load_plan, load_plan_data
from .model import (
    AutoAttendant,
    BarringProfile,
    CivicAddress,
    Customer,
    DecisionKind,
    HuntGroup,
    HuntStrategy,
    MediaMode,
    Plan,
    Queue,
    SipCredentials,
    Site,
    Target,
    Transport,
    Trunk,
    TrunkRegistration,
    User,
)
from .numbers import DEFAULT_EMERGENCY_NUMBERS, CallCategory, NumberRange
from .packs import PACK_FEATURES, FeatureName, Pack, PackFeature
from .router import CallContext, RoutingDecision, route, route_application_target
from .schedule import ForcedModes, Schedule, ScheduleMode
from .yamlsource import ConfigError, ConfigIssue, YamlSource, load_yaml_file, parse_yaml_text

__all__ = [
    "BUILTIN_PROFILES", "DEFAULT_EMERGENCY_NUMBERS", "PACK_FEATURES", "AutoAttendant",
    "BarringProfile", "CallCategory", "CallContext", "CivicAddress", "ConfigError",
    "ConfigIssue", "Customer", "DecisionKind", "FeatureName", "ForcedModes", "HuntGroup", "HuntStrategy",
    "MediaMode", "NumberRange", "Pack", "PackFeature", "Plan", "PlanHolder", "Queue",
    "RoutingDecision", "Schedule", "ScheduleMode", "SipCredentials", "Site", "Target", "Transport", "Trunk",
    "TrunkRegistration", "User", "YamlSource", "load_plan", "load_plan_data",
    "load_yaml_file", "parse_yaml_text", "route", "route_application_target",
]
