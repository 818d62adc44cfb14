"""Direct control: find the entity, check the allowlist, ask for confirmation where the operator wants it,
call the service, say the result; and read states (a weather entity's forecast through
``weather.get_forecasts`` with ``return_response``).

A confirmed action is two steps bound to one call: the first request keeps a :class:`Pending` in the call's
``ctx.extra`` and asks "Are you sure you want to unlock the Front Door?"; a second ``home_control`` with
``confirm: true`` (the caller said yes) or a keypad answer (:class:`KeypadConfirm`: 1 yes, 2 no, or the PIN and
#) within ``HA_CONFIRM_SECONDS`` runs it.  A ``confirm: true`` without the question having been asked only
asks it.  With ``HA_PIN`` set the PIN is needed too (on the keypad, so it never passes through the LLM).
Every action is logged once with the call id and caller, and returned as the tool's data (the call record).
"""
from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from voiceagent.dialog.keypad import KeypadStep
from voiceagent.dialog.tool_support import ToolReply

from .actions import ACTIONS, Action, capitalized, words_for
from .client import HaClient, State, Unavailable
from .entities import Match, find, spoken_name
from .settings import HomeAssistantSettings

log = logging.getLogger(__name__)

PENDING_KEY = "home_assistant.pending"   # in ctx.extra: the call's action waiting for a yes
TOOL = "home_control"


def allowed(st: State, s: HomeAssistantSettings) -> bool:
    return (st.entity_id in s.allowed_entities or st.domain in s.allowed_domains
            or bool({st.area_id.lower(), st.area_name.lower()} - {""} & s.allowed_areas))


def _refusal(what: str, why: str) -> ToolReply:
    return ToolReply(text=f"Not done: {why}. Tell the caller it is not allowed by phone.",
                     speak=f"Sorry, I'm not allowed to {what} by phone.", data={"refused": why, "mode": "direct"})


def _fail(exc: Unavailable) -> ToolReply:
    log.warning("home assistant: %s", exc.why)
    return ToolReply(text=f"Nothing was done: {exc.why}.", speak=exc.spoken, data={"error": exc.why, "mode": "direct"})


def _pick(client: HaClient, name: str, area: str, domains: Optional[Any]) -> "State | ToolReply":
    match: Match = find(client.states(), name, area, domains)
    if match.found is not None:
        return match.found
    if match.choices:
        q = match.question()
        return ToolReply(text=f"Ambiguous: several devices match {name!r}; the caller was asked which one. "
                              "Call again with the name they choose.", speak=q,
                         data={"ambiguous": [c.entity_id for c in match.choices], "mode": "direct"})
    where = f" in the {area}" if area else ""
    return ToolReply(text=f"No device called {name!r}{where} was found; nothing was done.",
                     speak=f"Sorry, I couldn't find anything called {name}{where}.",
                     data={"not_found": name, "mode": "direct"})


@dataclass
class Pending:
    call_id: str
    entity_id: str
    service: str          # domain.service
    body: Dict[str, Any]
    question_words: str   # "unlock the Front Door"
    done_words: str       # "Done, the Front Door is unlocked."
    expires: float        # ctx.clock.monotonic() deadline
    pin: bool


def control(args: Any, ctx: Any, s: HomeAssistantSettings) -> ToolReply:
    """``args``: name, area, action, value, confirm, pin (tools/home_assistant.py ControlArgs)."""
    client = HaClient(s, ctx.http)
    action: Action = ACTIONS[args.action]
    try:
        picked = _pick(client, args.name, args.area, action.domains)
    except Unavailable as exc:
        return _fail(exc)
    if isinstance(picked, ToolReply):
        return picked
    st = picked
    name = spoken_name(st)
    service = f"{st.domain}.{action.services[st.domain]}"
    question = words_for(action.verb, name, args.value)
    if not allowed(st, s) or (s.allowed_services and service not in s.allowed_services):
        return _refusal(question, f"{st.entity_id} / {service} is not on the Home Assistant allowlist")
    if action.needs_value and args.value is None:
        return ToolReply(text=f"Ask the caller for the value, then call again with value set ({args.action}).",
                         data={"missing": "value"})
    body: Dict[str, Any] = {"entity_id": st.entity_id, **(action.data(args.value) if action.data else {})}
    done = "Done, " + words_for(action.done, name, args.value) + "."
    if st.domain not in s.confirm_domains:
        return execute(client, ctx, s, Pending(ctx.call_id, st.entity_id, service, body, question, done, 0, False))
    pending = ctx.extra.get(PENDING_KEY)
    same = isinstance(pending, Pending) and pending.entity_id == st.entity_id and pending.service == service \
        and pending.call_id == ctx.call_id
    if args.confirm is False:
        ctx.extra.pop(PENDING_KEY, None)
        ctx.release_keypad()
        return ToolReply(text="Cancelled: nothing was done.", speak=f"Okay, I won't {question}.",
                         data={"cancelled": service, "entity_id": st.entity_id, "mode": "direct"})
    if args.confirm and same:
        if ctx.clock.monotonic() > pending.expires:
            return expired(ctx, pending)[0]
        if pending.pin and not _pin_ok(s, args.pin):
            if args.pin:
                return wrong_pin(ctx, pending)[0]
            return ToolReply(text="Not done yet: the PIN is needed; the caller enters it on the keypad (handled "
                                  "without you).", speak="Please enter your PIN on the keypad, then press pound.")
        return execute(client, ctx, s, pending, confirmed="spoken")
    return ask(client, ctx, s, Pending(ctx.call_id, st.entity_id, service, body, question, done,
                                       ctx.clock.monotonic() + s.ha_confirm_seconds, bool(s.ha_pin.get_secret_value())))


def _pin_ok(s: HomeAssistantSettings, pin: Optional[str]) -> bool:
    return bool(pin) and hmac.compare_digest(str(pin).strip().encode(), s.ha_pin.get_secret_value().encode())


def ask(client: HaClient, ctx: Any, s: HomeAssistantSettings, pending: Pending) -> ToolReply:
    ctx.extra[PENDING_KEY] = pending
    ctx.claim_keypad(KeypadConfirm(client, ctx, s, pending))
    how = ("To confirm, enter your PIN on the keypad, then press pound." if pending.pin
           else "Say yes or press 1, or say no or press 2.")
    speak = f"Are you sure you want to {pending.question_words}? {how}"
    text = ("Not done yet: the caller was asked to confirm and heard the question. If they say yes, call "
            "home_control again with the same name and action and confirm true; if no, with confirm false."
            + (" A PIN is needed: they enter it on the keypad." if pending.pin else ""))
    return ToolReply(text=text, speak=speak, data={"pending": pending.service, "entity_id": pending.entity_id,
                                                   "mode": "direct"})


def _close(ctx: Any, pending: Pending) -> None:
    if ctx.extra.get(PENDING_KEY) is pending:
        ctx.extra.pop(PENDING_KEY, None)
    ctx.release_keypad()


def expired(ctx: Any, pending: Pending) -> "tuple[ToolReply, str]":
    _close(ctx, pending)
    speak = f"That question timed out, so I didn't {pending.question_words}. Ask again if you still want it."
    return ToolReply(text="Not done: the confirmation timed out.", speak=speak,
                     data={"expired": pending.service, "entity_id": pending.entity_id, "mode": "direct"}), speak


def wrong_pin(ctx: Any, pending: Pending) -> "tuple[ToolReply, str]":
    _close(ctx, pending)
    log.warning("home assistant: wrong PIN for %s on call %s (caller %s)", pending.service, ctx.call_id, ctx.caller)
    speak = f"That PIN is not right, so I didn't {pending.question_words}."
    return ToolReply(text="Not done: wrong PIN.", speak=speak,
                     data={"wrong_pin": pending.service, "entity_id": pending.entity_id, "mode": "direct"}), speak


def execute(client: HaClient, ctx: Any, s: HomeAssistantSettings, pending: Pending,
            confirmed: Optional[str] = None) -> ToolReply:
    """Call the service; log it once (call id, caller) and return it as the record's data."""
    if confirmed:
        _close(ctx, pending)
    domain, service = pending.service.split(".", 1)
    record: Dict[str, Any] = {"mode": "direct", "service": pending.service, "entity_id": pending.entity_id,
                              "data": pending.body, "call_id": ctx.call_id, "caller": ctx.caller,
                              "confirmed": confirmed}
    try:
        changed = client.call_service(domain, service, pending.body)
    except Unavailable as exc:
        log.warning("home assistant: %s on %s failed (call %s, caller %s): %s", pending.service, pending.entity_id,
                    ctx.call_id, ctx.caller or "unknown", exc.why)
        return ToolReply(text=f"Not done: {exc.why}.", speak=exc.spoken, data={**record, "error": exc.why})
    log.info("home assistant: %s on %s (call %s, caller %s%s)", pending.service, pending.entity_id, ctx.call_id,
             ctx.caller or "unknown", f", confirmed {confirmed}" if confirmed else "")
    after = next((c.get("state") for c in changed if isinstance(c, dict) and c.get("entity_id") == pending.entity_id),
                 None) if isinstance(changed, list) else None
    record["state"] = after
    return ToolReply(text=f"{pending.done_words} (the caller heard it)", speak=pending.done_words, data=record)


class KeypadConfirm:
    """The keypad answer to the confirmation question (dialog/keypad.py): 1 yes, 2 or * no; with a PIN, the
    digits then #."""

    def __init__(self, client: HaClient, ctx: Any, s: HomeAssistantSettings, pending: Pending) -> None:
        self.client, self.ctx, self.s, self.pending = client, ctx, s, pending
        self.digits: List[str] = []

    def press(self, digit: str) -> KeypadStep:
        ctx, pending = self.ctx, self.pending
        if ctx.extra.get(PENDING_KEY) is not pending:
            return KeypadStep(done=True, heard="")  # answered by voice meanwhile: the digit is the profile's
        if ctx.clock.monotonic() > pending.expires:
            return KeypadStep(speak=expired(ctx, pending)[1])
        if digit in ("*", "2") and not (pending.pin and digit == "2"):
            _close(ctx, pending)
            return KeypadStep(speak=capitalized(f"okay, I won't {pending.question_words}."),
                              heard="The caller cancelled on the keypad.")
        if pending.pin:
            if digit != "#":
                self.digits = (self.digits + [digit])[-12:]
                return KeypadStep(done=False)
            if not _pin_ok(self.s, "".join(self.digits)):
                reply, speak = wrong_pin(ctx, pending)
                return KeypadStep(speak=speak, heard="The caller entered a wrong PIN on the keypad.", tool=TOOL,
                                  value=reply.value(), ok=True)
        elif digit != "1":
            return KeypadStep(speak="Press 1 to confirm, or 2 to cancel.", done=False)
        reply = execute(self.client, ctx, self.s, pending, confirmed="keypad")
        return KeypadStep(speak=reply.speak or "", heard="The caller confirmed on the keypad.", tool=TOOL,
                          value=reply.value())
