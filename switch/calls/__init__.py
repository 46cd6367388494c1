"""Call control: the call model (`Call`, its legs, media, parking, recording, transfers,
forks, originated calls) and `CallControl`, every call on one TransactionLayer.

Above it: the Channel API (`switch.applications`), routing (`switch.routing`, the
dialplan applied to a call) and the service (`switch.signalling`). Below it: the SIP
stack (`switch.sip`), the PRI gateway (`switch.pri_gateway`) and the media plane
(`switch.media`), each through its door. Call control's events (`CallEvent` for CDRs,
`ChannelEvent` for applications, the progress events for the ACD) go out on the bus.
"""

from switch.calls.call import Call
from switch.calls.control import CallControl
from switch.calls.events import (
    CALL_EVENT_TYPES,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallHeld,
    CallResumed,
    CallRinging,
    CallStarted,
    CallTransferred,
    ChannelEvent,
    DigitReceived,
    HungUp,
    LegAdded,
    LegAnswered,
    LegEnded,
    OriginateFailed,
    PeerAnswered,
    PeerFailed,
    PeerRinging,
    PlaybackDone,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
    TimerFired,
)
from switch.calls.forking import COMPLETED_ELSEWHERE, Failure, Forking, Step, best_failure
from switch.calls.legs import Leg, LegKind
from switch.calls.originate import Originate, OriginateError
from switch.calls.types import (
    NO_ANSWER,
    NO_ROUTE,
    TEMPORARY_FAILURE,
    CallOrigin,
    CallSettings,
    CallState,
    DialTarget,
    MediaControl,
    map_failure,
)

__all__ = [
    "CALL_EVENT_TYPES",
    "COMPLETED_ELSEWHERE",
    "NO_ANSWER",
    "NO_ROUTE",
    "TEMPORARY_FAILURE",
    "Call",
    "CallAnswered",
    "CallBridged",
    "CallControl",
    "CallEnded",
    "CallEvent",
    "CallHeld",
    "CallOrigin",
    "CallResumed",
    "CallRinging",
    "CallSettings",
    "CallStarted",
    "CallState",
    "CallTransferred",
    "ChannelEvent",
    "DialTarget",
    "DigitReceived",
    "Failure",
    "Forking",
    "HungUp",
    "Leg",
    "LegAdded",
    "LegAnswered",
    "LegEnded",
    "LegKind",
    "MediaControl",
    "Originate",
    "OriginateError",
    "OriginateFailed",
    "PeerAnswered",
    "PeerFailed",
    "PeerRinging",
    "PlaybackDone",
    "RecordingPaused",
    "RecordingResumed",
    "RecordingStarted",
    "Step",
    "TimerFired",
    "best_failure",
    "map_failure",
]
