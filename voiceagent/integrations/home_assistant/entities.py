"""Which entity the caller means, and how its state is said.

A name matches an entity when every word the caller used (less "the", "please" ...) is in the entity's
friendly name, its area or a word for its kind ("light", "thermostat", "garage door").  A name said in full
wins over partial ones; two or more left is a question back ("Which one: the Porch Light or the Porch
Lantern?"), never a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence

from .client import State

STOP = frozenset("the a an my our please in on of at to for is are all".split())
KIND_WORDS: Dict[str, FrozenSet[str]] = {
    "light": frozenset("light lights lamp lamps".split()),
    "switch": frozenset("switch plug outlet".split()),
    "lock": frozenset("lock door".split()),
    "cover": frozenset("door garage blind blinds shade shades shutter curtain gate".split()),
    "climate": frozenset("thermostat heating heat ac cooling temperature climate".split()),
    "fan": frozenset("fan".split()),
    "alarm_control_panel": frozenset("alarm security system".split()),
    "sensor": frozenset("sensor temperature humidity".split()),
    "binary_sensor": frozenset("sensor door window".split()),
    "weather": frozenset("weather forecast".split()),
    "media_player": frozenset("tv speaker music player".split()),
    "scene": frozenset("scene".split()),
    "script": frozenset("script".split()),
}


def words(text: str) -> List[str]:
    out = []
    for w in re.findall(r"[a-z0-9]+", (text or "").lower().replace("'s", "")):
        if w.endswith("s") and len(w) > 3 and w not in ("lights", "blinds", "shades", "lamps", "gas"):
            w = w[:-1] if not w.endswith("ss") else w
        out.append(w)
    return [w for w in out if w not in STOP]


def _vocab(st: State) -> FrozenSet[str]:
    return frozenset(words(st.name)) | frozenset(words(st.area_name)) | frozenset(words(st.area_id)) \
        | KIND_WORDS.get(st.domain, frozenset()) | frozenset(words(st.entity_id.split(".", 1)[1]))


@dataclass
class Match:
    found: Optional[State] = None
    choices: Sequence[State] = ()   # ambiguous: ask which

    def question(self) -> str:
        names = [spoken_name(c) for c in self.choices[:4]]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"Which one do you mean: {listed}?"


def find(states: Iterable[State], name: str, area: str = "", domains: Optional[FrozenSet[str]] = None) -> Match:
    """The entity ``name`` (and ``area``) names among ``states`` of ``domains`` (all when None)."""
    pool = [s for s in states if domains is None or s.domain in domains]
    wanted = name.strip().lower()
    exact = [s for s in pool if s.entity_id == wanted]
    if exact:
        return Match(found=exact[0])
    if area.strip():
        where = set(words(area))
        # the entity's area, or for one without an area its name ("Basement Leak" in the basement)
        pool = [s for s in pool if where and where <= (set(words(s.area_name)) | set(words(s.area_id))
                                                      or (set() if s.area_id else set(words(s.name))))]
    said = set(words(name)) - (set(words(area)) if area else set())
    if not said:
        return Match(choices=pool) if len(pool) != 1 else Match(found=pool[0])
    hits = [s for s in pool if said <= _vocab(s)]
    if len(hits) > 1:  # a name said in full beats names that merely contain the words
        full = [s for s in hits if set(words(s.name)) and set(words(s.name)) <= said | set(words(s.area_name))]
        if len(full) == 1:
            return Match(found=full[0])
        if len(full) > 1:
            hits = full
    if len(hits) == 1:
        return Match(found=hits[0])
    return Match(choices=hits)


def spoken_name(st: State) -> str:
    """'the Porch Light' (a name that starts with 'the' or a possessive is said as it is)."""
    name = st.name
    first = name.split(" ", 1)[0].lower()
    return name if first in ("the", "my", "our") or first.endswith("'s") else f"the {name}"


UNIT_WORDS = {"°F": "degrees", "°C": "degrees", "%": "percent", "W": "watts", "kWh": "kilowatt hours",
              "lx": "lux", "ppm": "parts per million"}
OPEN_CLASSES = {"door", "garage_door", "window", "opening", "lock"}


def _num(value: object) -> str:
    try:
        f = float(str(value))
    except ValueError:
        return str(value)
    return f"{f:.1f}".rstrip("0").rstrip(".") if f != int(f) else str(int(f))


def state_words(st: State) -> str:
    """One sentence: 'The Garage Door is closed.', 'The Thermostat is set to heat at 68 degrees; it's 66 now.'"""
    who = spoken_name(st)
    who = who[0].upper() + who[1:]
    s, a = st.state, st.attributes
    if s in ("unavailable", "unknown", ""):
        return f"{who} isn't reporting a state right now."
    if st.domain == "binary_sensor":
        cls = str(a.get("device_class") or "")
        if cls in OPEN_CLASSES:
            return f"{who} is {'open' if s == 'on' else 'closed'}."
        if cls == "moisture":
            return f"{who} {'detects water' if s == 'on' else 'is dry'}."
        if cls in ("motion", "occupancy", "presence"):
            return f"{who} {'detects someone' if s == 'on' else 'detects no one'}."
        return f"{who} is {'on' if s == 'on' else 'off'}."
    if st.domain == "climate":
        unit = "degrees"
        line = f"{who} is {'off' if s == 'off' else 'set to ' + s.replace('_', ' ')}"
        if s != "off" and a.get("temperature") is not None:
            line += f" at {_num(a['temperature'])} {unit}"
        if a.get("current_temperature") is not None:
            line += f"; it's {_num(a['current_temperature'])} {unit} now"
        return line + "."
    if st.domain == "light" and s == "on" and isinstance(a.get("brightness"), (int, float)):
        return f"{who} is on at {round(a['brightness'] * 100 / 255)} percent."
    if st.domain == "sensor":
        unit = str(a.get("unit_of_measurement") or "")
        return f"{who} is {_num(s)}{' ' + UNIT_WORDS.get(unit, unit) if unit else ''}."
    if st.domain == "weather":
        line = f"It's {s.replace('partlycloudy', 'partly cloudy').replace('-', ' ')} now"
        if a.get("temperature") is not None:
            line += f", {_num(a['temperature'])} degrees"
        return line + "."
    return f"{who} is {s.replace('_', ' ')}."
