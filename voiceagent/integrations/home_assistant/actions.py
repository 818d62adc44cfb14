"""What the caller may ask to be done in direct mode, as Home Assistant services, and how it is said.

Each action maps the entity's domain to a service (``lock`` → ``lock.unlock`` ...), builds the service data
and has the words for the question ("unlock the Front Door") and the answer ("Done, the Front Door is
unlocked.").  An action outside this table, or a domain it does not apply to, is refused: nothing arbitrary
reaches Home Assistant's service API.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Optional

ON_OFF = frozenset("light switch fan input_boolean media_player climate siren humidifier automation".split())


@dataclass(frozen=True)
class Action:
    services: Dict[str, str]                 # domain -> service
    verb: str                                # "unlock {name}" (the question)
    done: str                                # "{name} is unlocked" (the answer)
    needs_value: bool = False
    data: Optional[Callable[[float], Dict[str, Any]]] = None

    @property
    def domains(self) -> FrozenSet[str]:
        return frozenset(self.services)


def _num(v: float) -> str:
    return f"{v:g}"


ACTIONS: Dict[str, Action] = {
    "turn_on": Action({**{d: "turn_on" for d in ON_OFF}, "scene": "turn_on", "script": "turn_on"},
                      "turn on {name}", "{name} is on"),
    "turn_off": Action({d: "turn_off" for d in ON_OFF | {"script"}}, "turn off {name}", "{name} is off"),
    "toggle": Action({d: "toggle" for d in ON_OFF - {"climate"}}, "toggle {name}", "I toggled {name}"),
    "lock": Action({"lock": "lock"}, "lock {name}", "{name} is locked"),
    "unlock": Action({"lock": "unlock"}, "unlock {name}", "{name} is unlocked"),
    "open": Action({"cover": "open_cover", "valve": "open_valve"}, "open {name}", "{name} is opening"),
    "close": Action({"cover": "close_cover", "valve": "close_valve"}, "close {name}", "{name} is closing"),
    "set_temperature": Action({"climate": "set_temperature"}, "set {name} to {value} degrees",
                              "{name} is set to {value} degrees", True, lambda v: {"temperature": v}),
    "set_brightness": Action({"light": "turn_on"}, "set {name} to {value} percent", "{name} is at {value} percent",
                             True, lambda v: {"brightness_pct": max(0, min(100, round(v)))}),
    "arm_away": Action({"alarm_control_panel": "alarm_arm_away"}, "arm {name} in away mode", "{name} is armed away"),
    "arm_home": Action({"alarm_control_panel": "alarm_arm_home"}, "arm {name} in home mode", "{name} is armed home"),
    "disarm": Action({"alarm_control_panel": "alarm_disarm"}, "disarm {name}", "{name} is disarmed"),
}


def words_for(template: str, name: str, value: Optional[float]) -> str:
    return template.format(name=name, value=_num(value) if value is not None else "")


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
