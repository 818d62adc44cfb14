"""The hangup-cause → call-outcome table: how an attempt to reach someone went."""
from __future__ import annotations

from typing import Dict, Optional

ANSWERED = "answered"
BUSY = "busy"
NO_ANSWER = "no_answer"
REJECTED = "rejected"
INVALID_NUMBER = "invalid_number"
FAILED = "failed"
OUTCOMES = (ANSWERED, BUSY, NO_ANSWER, REJECTED, INVALID_NUMBER, FAILED)

#: Hangup cause (Q.850 names as FreeSWITCH spells them) → outcome of a call that was *not*
#: answered.  An answered call is ``answered`` whatever its cause: the outcome says how the
#: attempt to reach someone went, the cause says how the conversation ended.
#:
#: The buckets follow what a dialer does next:
#:
#: * ``busy``: the callee's line is in use (SIP 486/600) — retry in a few minutes.
#: * ``no_answer``: it rang (or could have) and nobody picked up, or the callee is
#:   momentarily unreachable, or the attempt was abandoned while ringing (our
#:   originate_timeout → NO_ANSWER; a SIP 480 → NO_USER_RESPONSE; a CANCEL →
#:   ORIGINATOR_CANCEL, which is also what an inbound caller hanging up before we answer
#:   gives; an unanswered NORMAL_CLEARING / MANAGER_REQUEST / ALLOTTED_TIMEOUT is such an
#:   abandonment too) — retry later.
#: * ``rejected``: the callee (not the network) declined: SIP 603 → CALL_REJECTED, or barred
#:   incoming calls — do not retry soon.
#: * ``invalid_number``: the number cannot be reached as dialled (SIP 404/484/…) — fix the
#:   number, never retry as is.
#: * ``failed``: everything else — our side or the network failed (bad/down gateway, 408 →
#:   RECOVERY_ON_TIMER_EXPIRE, 503 → NORMAL_TEMPORARY_FAILURE, congestion, codec
#:   mismatch, no progress at all).  This is also the default for causes not listed, so an
#:   unknown cause is never mistaken for a person's decision.
HANGUP_OUTCOMES: Dict[str, str] = {
    "USER_BUSY": BUSY,
    "NO_ANSWER": NO_ANSWER,
    "NO_USER_RESPONSE": NO_ANSWER,
    "ORIGINATOR_CANCEL": NO_ANSWER,
    "SUBSCRIBER_ABSENT": NO_ANSWER,
    "USER_NOT_REGISTERED": NO_ANSWER,
    "ALLOTTED_TIMEOUT": NO_ANSWER,
    "NORMAL_CLEARING": NO_ANSWER,
    "MANAGER_REQUEST": NO_ANSWER,
    "LOSE_RACE": NO_ANSWER,
    "PICKED_OFF": NO_ANSWER,
    "CALL_REJECTED": REJECTED,
    "INCOMING_CALL_BARRED": REJECTED,
    "UNALLOCATED_NUMBER": INVALID_NUMBER,
    "INVALID_NUMBER_FORMAT": INVALID_NUMBER,
    "NO_ROUTE_DESTINATION": INVALID_NUMBER,
    "NO_ROUTE_TRANSIT_NET": INVALID_NUMBER,
    "NUMBER_CHANGED": INVALID_NUMBER,
    # Listed for documentation; unlisted causes are FAILED anyway.
    "INVALID_GATEWAY": FAILED,
    "GATEWAY_DOWN": FAILED,
    "NORMAL_TEMPORARY_FAILURE": FAILED,
    "RECOVERY_ON_TIMER_EXPIRE": FAILED,
    "DESTINATION_OUT_OF_ORDER": FAILED,
    "NETWORK_OUT_OF_ORDER": FAILED,
    "NORMAL_CIRCUIT_CONGESTION": FAILED,
    "SWITCH_CONGESTION": FAILED,
    "SERVICE_UNAVAILABLE": FAILED,
    "PROGRESS_TIMEOUT": FAILED,
    "MEDIA_TIMEOUT": FAILED,
    "INCOMPATIBLE_DESTINATION": FAILED,
    "BEARERCAPABILITY_NOTAVAIL": FAILED,
    "OUTGOING_CALL_BARRED": FAILED,
    "FACILITY_REJECTED": FAILED,
    "CHAN_NOT_IMPLEMENTED": FAILED,
    "INVALID_PROFILE": FAILED,
    "INVALID_URL": FAILED,
    "SYSTEM_SHUTDOWN": FAILED,
    "NORMAL_UNSPECIFIED": FAILED,
}


def hangup_outcome(cause: Optional[str], answered: bool = False) -> str:
    """Outcome of a call attempt: ``answered`` if it was answered, else by the cause table."""
    if answered:
        return ANSWERED
    return HANGUP_OUTCOMES.get((cause or "").strip().upper(), FAILED)


