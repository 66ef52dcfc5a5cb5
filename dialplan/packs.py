"""User packs and the features each one includes, and the feature access codes.

The pack matrix is annex 16.1 of the service description ("Détail des fonctionnalités des
Pack utilisateurs"), telephony rows only: a Workspace line ("Espace de travail", section 2.3)
has basic telephony, no voicemail, no DND, no call park, no softphone, and one device.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Pack(Enum):
    CALLING = "calling"
    SUITE = "suite"
    WORKSPACE = "workspace"


class PackFeature(Enum):
    """Telephony features of annex 16.1 that the switch itself implements."""

    HOLD = "hold"
    TRANSFER = "transfer"
    EXTENSION_DIALING = "extension_dialing"
    FEATURE_CODES = "feature_codes"
    CALL_FORWARDING = "call_forwarding"
    CLIR = "clir"
    VOICEMAIL = "voicemail"
    DND = "dnd"
    CALL_PARK = "call_park"
    GROUP_CALL_PARK = "group_call_park"
    CONFERENCE = "conference"
    SIMULTANEOUS_RING = "simultaneous_ring"
    SEQUENTIAL_RING = "sequential_ring"
    ANONYMOUS_REJECTION = "anonymous_rejection"
    AUTO_CALLBACK = "auto_callback"
    VIDEO = "video"
    SOFTPHONE = "softphone"
    CALL_PICKUP = "call_pickup"  # "interception" (annex 16.1), issue 16


# Annex 16.1: the rows ticked in the "Espace de travail" column.
_WORKSPACE = frozenset(
    {
        PackFeature.HOLD,
        PackFeature.TRANSFER,
        PackFeature.EXTENSION_DIALING,
        PackFeature.FEATURE_CODES,
        PackFeature.CALL_FORWARDING,
        PackFeature.CLIR,
    }
)
# Annex 16.1: Calling and Suite tick every telephony row (Suite adds meetings, not telephony).
_CALLING = frozenset(PackFeature)

PACK_FEATURES: dict[Pack, frozenset[PackFeature]] = {
    Pack.CALLING: _CALLING,
    Pack.SUITE: _CALLING,
    Pack.WORKSPACE: _WORKSPACE,
}

# Section 2.3: the Workspace pack "est limité à un seul appareil". The other packs are
# multi-device (section 2.1, "Multi-terminaux"); no limit is stated.
PACK_MAX_DEVICES: dict[Pack, int | None] = {
    Pack.CALLING: None,
    Pack.SUITE: None,
    Pack.WORKSPACE: 1,
}


class FeatureName(Enum):
    """What a feature access code (`*` code) does. The actions live elsewhere."""

    ECHO_TEST = "echo_test"
    TONE_TEST = "tone_test"
    RECORD_TEST = "record_test"  # beep, then record the caller and report its DTMF digits
    VOICEMAIL = "voicemail"
    DND_ON = "dnd_on"
    DND_OFF = "dnd_off"
    FORWARD_ALWAYS_ON = "forward_always_on"
    FORWARD_ALWAYS_OFF = "forward_always_off"
    FORWARD_BUSY_ON = "forward_busy_on"
    FORWARD_BUSY_OFF = "forward_busy_off"
    FORWARD_NO_ANSWER_ON = "forward_no_answer_on"
    FORWARD_NO_ANSWER_OFF = "forward_no_answer_off"
    FORWARD_UNREACHABLE_ON = "forward_unreachable_on"
    FORWARD_UNREACHABLE_OFF = "forward_unreachable_off"
    CALL_PARK = "call_park"
    CALL_PARK_RETRIEVE = "call_park_retrieve"
    NIGHT_SWITCH = "night_switch"  # an admin forces a schedule: code + 1 open/2 closed/0 auto
    # issue 15: personal call features
    CLIR_ONCE = "clir_once"  # the code, then the number: withhold the identity for this call
    CLIR_ON = "clir_on"
    CLIR_OFF = "clir_off"
    ANONYMOUS_REJECTION_ON = "anonymous_rejection_on"
    ANONYMOUS_REJECTION_OFF = "anonymous_rejection_off"
    CALL_WAITING_ON = "call_waiting_on"
    CALL_WAITING_OFF = "call_waiting_off"
    CALLBACK_ON_BUSY = "callback_on_busy"
    SIMULTANEOUS_RING_ON = "simultaneous_ring_on"  # the code, then the number to add
    SIMULTANEOUS_RING_OFF = "simultaneous_ring_off"
    # issue 14: call queue agents, the code then the queue's extension (*50402)
    QUEUE_LOGIN = "queue_login"
    QUEUE_LOGOUT = "queue_logout"
    # issue 16: meet-me rooms (*71 + the room's number), the personal conference number of
    # a Suite-pack user (*72 alone: one's own; *72 + an extension: that user's), pickup
    CONFERENCE_ROOM = "conference_room"
    PERSONAL_CONFERENCE = "personal_conference"
    GROUP_PICKUP = "group_pickup"
    DIRECTED_PICKUP = "directed_pickup"  # the code, then the ringing user's extension
    THREE_WAY = "three_way"  # merge one's held and active calls into a conference


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    needs: PackFeature | None  # the pack feature the caller must have, None for diagnostics
    takes_argument: bool  # digits follow the code (a forwarding destination)
    argument_optional: bool = False  # the code alone is also valid (*72: one's own room)


FEATURE_SPECS: dict[FeatureName, FeatureSpec] = {
    FeatureName.ECHO_TEST: FeatureSpec(None, False),
    FeatureName.TONE_TEST: FeatureSpec(None, False),
    FeatureName.RECORD_TEST: FeatureSpec(None, False),
    FeatureName.VOICEMAIL: FeatureSpec(PackFeature.VOICEMAIL, False),
    FeatureName.DND_ON: FeatureSpec(PackFeature.DND, False),
    FeatureName.DND_OFF: FeatureSpec(PackFeature.DND, False),
    FeatureName.FORWARD_ALWAYS_ON: FeatureSpec(PackFeature.CALL_FORWARDING, True),
    FeatureName.FORWARD_ALWAYS_OFF: FeatureSpec(PackFeature.CALL_FORWARDING, False),
    FeatureName.FORWARD_BUSY_ON: FeatureSpec(PackFeature.CALL_FORWARDING, True),
    FeatureName.FORWARD_BUSY_OFF: FeatureSpec(PackFeature.CALL_FORWARDING, False),
    FeatureName.FORWARD_NO_ANSWER_ON: FeatureSpec(PackFeature.CALL_FORWARDING, True),
    FeatureName.FORWARD_NO_ANSWER_OFF: FeatureSpec(PackFeature.CALL_FORWARDING, False),
    FeatureName.FORWARD_UNREACHABLE_ON: FeatureSpec(PackFeature.CALL_FORWARDING, True),
    FeatureName.FORWARD_UNREACHABLE_OFF: FeatureSpec(PackFeature.CALL_FORWARDING, False),
    FeatureName.CALL_PARK: FeatureSpec(PackFeature.CALL_PARK, False),
    FeatureName.CALL_PARK_RETRIEVE: FeatureSpec(PackFeature.CALL_PARK, True),  # *88 + orbit
    # gated by the user's `admin: true` in the plan, not by a pack (router._night_switch)
    FeatureName.NIGHT_SWITCH: FeatureSpec(None, True),
    FeatureName.CLIR_ONCE: FeatureSpec(PackFeature.CLIR, True),
    FeatureName.CLIR_ON: FeatureSpec(PackFeature.CLIR, False),
    FeatureName.CLIR_OFF: FeatureSpec(PackFeature.CLIR, False),
    FeatureName.ANONYMOUS_REJECTION_ON: FeatureSpec(PackFeature.ANONYMOUS_REJECTION, False),
    FeatureName.ANONYMOUS_REJECTION_OFF: FeatureSpec(PackFeature.ANONYMOUS_REJECTION, False),
    # call waiting ("double appel") is no row of annex 16.1: every pack has it
    FeatureName.CALL_WAITING_ON: FeatureSpec(None, False),
    FeatureName.CALL_WAITING_OFF: FeatureSpec(None, False),
    FeatureName.CALLBACK_ON_BUSY: FeatureSpec(PackFeature.AUTO_CALLBACK, False),
    FeatureName.SIMULTANEOUS_RING_ON: FeatureSpec(PackFeature.SIMULTANEOUS_RING, True),
    FeatureName.SIMULTANEOUS_RING_OFF: FeatureSpec(PackFeature.SIMULTANEOUS_RING, False),
    FeatureName.QUEUE_LOGIN: FeatureSpec(None, True),
    FeatureName.QUEUE_LOGOUT: FeatureSpec(None, True),
    FeatureName.CONFERENCE_ROOM: FeatureSpec(PackFeature.CONFERENCE, True),
    FeatureName.PERSONAL_CONFERENCE: FeatureSpec(PackFeature.CONFERENCE, True,
                                                 argument_optional=True),
    FeatureName.GROUP_PICKUP: FeatureSpec(PackFeature.CALL_PICKUP, False),
    FeatureName.DIRECTED_PICKUP: FeatureSpec(PackFeature.CALL_PICKUP, True),
    FeatureName.THREE_WAY: FeatureSpec(PackFeature.CONFERENCE, False),
}

# Used when a customer declares no `feature_codes:`. Echo and tone tests are what a tester
# dials first; the rest follow common European PBX habits (*21 forward always, *86 mailbox).
DEFAULT_FEATURE_CODES: dict[str, FeatureName] = {
    "*43": FeatureName.ECHO_TEST,
    "*44": FeatureName.TONE_TEST,
    "*86": FeatureName.VOICEMAIL,
    "*78": FeatureName.DND_ON,
    "*79": FeatureName.DND_OFF,
    "*21": FeatureName.FORWARD_ALWAYS_ON,
    "#21": FeatureName.FORWARD_ALWAYS_OFF,
    "*67": FeatureName.FORWARD_BUSY_ON,
    "#67": FeatureName.FORWARD_BUSY_OFF,
    "*61": FeatureName.FORWARD_NO_ANSWER_ON,
    "#61": FeatureName.FORWARD_NO_ANSWER_OFF,
    "*62": FeatureName.FORWARD_UNREACHABLE_ON,
    "#62": FeatureName.FORWARD_UNREACHABLE_OFF,
    "*68": FeatureName.CALL_PARK,
    "*88": FeatureName.CALL_PARK_RETRIEVE,  # then the orbit: *881
    "*71": FeatureName.CONFERENCE_ROOM,  # then the room's number: *71800
    "*72": FeatureName.PERSONAL_CONFERENCE,  # alone, or then a Suite user's extension
    "*8": FeatureName.GROUP_PICKUP,
    "*87": FeatureName.DIRECTED_PICKUP,  # then the ringing user's extension: *87410
    "*3": FeatureName.THREE_WAY,  # on a third line: merge the held and the active call
    "*31": FeatureName.CLIR_ONCE,
    "*32": FeatureName.CLIR_ON,
    "#32": FeatureName.CLIR_OFF,
    "*77": FeatureName.ANONYMOUS_REJECTION_ON,
    "#77": FeatureName.ANONYMOUS_REJECTION_OFF,
    "*58": FeatureName.CALL_WAITING_ON,
    "#58": FeatureName.CALL_WAITING_OFF,
    "*37": FeatureName.CALLBACK_ON_BUSY,
    "*63": FeatureName.SIMULTANEOUS_RING_ON,
    "#63": FeatureName.SIMULTANEOUS_RING_OFF,
    "*50": FeatureName.QUEUE_LOGIN,  # then the queue's extension: *50402
    "#50": FeatureName.QUEUE_LOGOUT,
}
