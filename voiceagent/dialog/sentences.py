"""Streaming sentence splitting and text normalisation for speech.

:class:`SentenceSplitter` turns LLM deltas into sentences the moment they end, so TTS can start on
the first one while the LLM is still writing.  A sentence ends at ``. ! ? …`` followed by
whitespace (we wait for that whitespace: "3.5" and "e.g." must not split), except after titles
("Dr."), initials ("J.") and ellipses that continue in lower case.  A long clause without an end is
cut at a comma, then at a space, so speech never waits for a run-on sentence.

:func:`normalize_for_speech` rewrites what a TTS voice would mispronounce or read out literally:
markdown, emoji, URLs, numbers, times, money, percentages, units and symbols.
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, Optional

# Never the end of a sentence (a name or a number follows).
_TITLES = {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "mt", "no", "vs", "fig", "approx", "dept", "ave",
           "blvd", "e.g", "i.e", "cf", "tel", "ext", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun",
           "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun"}
# The end only when a capitalised word follows.
_MAYBE_END = {"etc", "a.m", "p.m", "am", "pm", "u.s", "min", "sec", "hr", "hrs"}
_CLOSERS = "\"')]}’”»"


class SentenceSplitter:
    """Feed deltas, get complete sentences.  ``flush()`` at the end of the stream."""

    def __init__(self, soft_limit: int = 90, hard_limit: int = 180, min_clause: int = 25,
                 first_soft_limit: Optional[int] = None) -> None:
        self.soft_limit = soft_limit  # past this, cut at a comma/semicolon/colon
        # The first piece of a reply may be cut at a comma sooner: the caller is waiting in silence
        # for it, and a small local model writes only ~10 tokens a second on a busy CPU.
        self.first_soft_limit = first_soft_limit
        self._emitted = 0
        self.hard_limit = hard_limit  # past this, cut at a space
        self.min_clause = min_clause
        self._buf = ""
        self._scan = 0  # everything before this was already checked for an end

    def feed(self, delta: str) -> List[str]:
        self._buf += delta
        out = []
        while True:
            cut = self._find_end()
            if cut is None:
                cut = self._find_long_cut()
            if cut is None:
                break
            sentence, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
            self._scan = 0
            if _speakable(sentence):
                out.append(sentence)
                self._emitted += 1
        return out

    def flush(self) -> List[str]:
        rest, self._buf, self._scan = self._buf.strip(), "", 0
        return [rest] if _speakable(rest) else []

    # --- boundaries --------------------------------------------------------------------------
    def _find_end(self) -> Optional[int]:
        buf = self._buf
        i = self._scan
        n = len(buf)
        while i < n:
            ch = buf[i]
            if ch == "\n":
                if buf[:i].strip():
                    return i + 1
                i += 1
                continue
            if ch in ".!?…":
                j = i
                while j < n and buf[j] in ".!?…":
                    j += 1
                k = j
                while k < n and buf[k] in _CLOSERS:
                    k += 1
                if k >= n:
                    self._scan = i  # undecided until the next character arrives
                    return None
                if not buf[k].isspace():
                    i = k  # "3.5", "e.g.x", "example.com"
                    continue
                nxt = buf[k:].lstrip()
                if not nxt:
                    self._scan = i
                    return None
                if self._is_end(buf, i, j, nxt[0]):
                    return k
                i = k
                continue
            i += 1
        self._scan = n
        return None

    @staticmethod
    def _is_end(buf: str, start: int, stop: int, next_char: str) -> bool:
        punct = buf[start:stop]
        if punct in ("...", "…") or (len(punct) > 1 and set(punct) <= {".", "…"}):
            return not next_char.islower()  # "I think... maybe" continues
        if punct != ".":
            return True
        m = re.search(r"([A-Za-z][A-Za-z.]*)$", buf[:start])
        word = m.group(1).lower() if m else ""
        if word in _TITLES:
            return False
        if len(word) == 1 and buf[start - 1].isupper():
            return False  # an initial: "J. Smith"
        if word in _MAYBE_END or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
            return next_char.isupper()
        return True

    def _find_long_cut(self) -> Optional[int]:
        buf = self._buf
        soft = self.first_soft_limit if self.first_soft_limit and not self._emitted else self.soft_limit
        if len(buf) < soft:
            return None
        best = None
        for m in re.finditer(r"[,;:]\s|\s[-–—]\s", buf):
            end = m.end()
            if self.min_clause <= end <= self.hard_limit and not re.search(r"\d$", buf[:m.start()]):
                best = end
        if best is not None:
            return best
        if len(buf) < self.hard_limit:
            return None
        space = buf.rfind(" ", self.min_clause, self.hard_limit)
        return space + 1 if space > 0 else self.hard_limit


def _speakable(s: str) -> bool:
    return any(c.isalnum() for c in s)


def split_sentences(text: str) -> List[str]:
    sp = SentenceSplitter()
    return sp.feed(text) + sp.flush()


# --- numbers to words ------------------------------------------------------------------------------

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
        "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + " hundred" + (" " + number_to_words(n % 100) if n % 100 else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_to_words(head) + " " + name + (" " + number_to_words(rest) if rest else "")
    return str(n)


def ordinal_to_words(n: int) -> str:
    words = number_to_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORD:
        last = _ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year_to_words(n: int) -> str:
    if 2000 <= n <= 2009:
        return number_to_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    return number_to_words(hi) + " " + ("oh " + _ONES[lo] if lo < 10 else number_to_words(lo))


def _decimal(int_part: str, frac: str) -> str:
    return number_to_words(int(int_part.replace(",", "") or 0)) + " point " + " ".join(_ONES[int(d)] for d in frac)


def _amount(s: str) -> str:
    s = s.replace(",", "")
    if "." in s:
        a, b = s.split(".", 1)
        return _decimal(a, b)
    return number_to_words(int(s))


# --- normalisation ---------------------------------------------------------------------------------

_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", "")}
_UNITS = {
    "°C": "degrees Celsius", "°F": "degrees Fahrenheit", "°": "degrees", "km/h": "kilometers per hour",
    "kph": "kilometers per hour", "mph": "miles per hour", "m/s": "meters per second", "km": "kilometers",
    "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "ml": "milliliters", "mi": "miles", "lbs": "pounds",
    "lb": "pounds", "GB": "gigabytes", "MB": "megabytes", "kB": "kilobytes", "kWh": "kilowatt hours", "kW": "kilowatts",
    "g": "grams", "m": "meters", "l": "liters", "L": "liters", "h": "hours", "min": "minutes", "s": "seconds",
}
_UNIT_SINGULAR = {"degrees": "degree", "kilometers": "kilometer", "kilograms": "kilogram", "centimeters": "centimeter",
                  "millimeters": "millimeter", "milliliters": "milliliter", "miles": "mile", "pounds": "pound",
                  "gigabytes": "gigabyte", "megabytes": "megabyte", "kilobytes": "kilobyte", "kilowatt": "kilowatt",
                  "kilowatts": "kilowatt", "grams": "gram", "meters": "meter", "liters": "liter", "hours": "hour",
                  "minutes": "minute", "seconds": "second"}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_URL = re.compile(r"\b(?:https?://|www\.)([^\s/]*[^\s/.,;:!?)\]])(?:/(?:\S*[^\s.,;:!?)\]])?)?", re.I)
_EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b")


def _strip_markdown(t: str) -> str:
    t = re.sub(r"```.*?```", " ", t, flags=re.S)
    t = re.sub(r"`([^`]*)`", r"\1", t)
    t = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", t)
    t = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", t)
    t = re.sub(r"(\*\*|__)(.+?)\1", r"\2", t)
    t = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", t)
    t = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"\1", t)
    t = re.sub(r"~~(.+?)~~", r"\1", t)
    t = re.sub(r"(?m)^\s{0,3}#{1,6}\s+", "", t)
    t = re.sub(r"(?m)^\s*>\s?", "", t)
    t = re.sub(r"(?m)^\s*(?:[-*+•]|\d+[.)])\s+", "", t)
    t = re.sub(r"(?m)^\s*[-*_]{3,}\s*$", "", t)
    return t


def _strip_emoji(t: str) -> str:
    out = []
    for ch in t:
        cat = unicodedata.category(ch)
        if cat == "So" and ch not in "°©®™":
            continue
        if ch in "\u200d\ufe0f\ufe0e" or cat == "Sk" and ord(ch) >= 0x1F3FB:
            continue
        out.append(ch)
    return "".join(out)


def _spoken_domain(host: str) -> str:
    host = host.rstrip(".,;:!?)").lower()
    host = re.sub(r"^www\.", "", host)
    return " dot ".join(host.split("."))


def _time(m: re.Match) -> str:
    h, mm, ampm = int(m.group(1)), int(m.group(2)), (m.group(3) or "")
    suffix = ""
    if ampm:
        suffix = " " + ("a.m." if ampm.lower().startswith("a") else "p.m.")  # Whisper hears "A M" as "at M"
    if mm == 0:
        on_the_hour = " hundred" if h > 12 or m.group(1).startswith("0") else " o'clock"
        return number_to_words(h) + (suffix if ampm else on_the_hour)
    minutes = ("oh " + _ONES[mm]) if mm < 10 else number_to_words(mm)
    return f"{number_to_words(h)} {minutes}{suffix}"


def _money(m: re.Match) -> str:
    sym, amount, scale = m.group(1), m.group(2).replace(",", ""), m.group(3)
    one, many, sub1, subn = _CURRENCY[sym]
    if scale:
        return f"{_amount(amount)} {scale.lower()} {many}"
    whole, _, cents = amount.partition(".")
    w = int(whole or 0)
    words = f"{number_to_words(w)} {one if w == 1 else many}"
    if cents and sub1:
        c = int((cents + "0")[:2])
        if c:
            cw = f"{number_to_words(c)} {sub1 if c == 1 else subn}"
            return cw if w == 0 else f"{words} and {cw}"
    return words


def _unit(m: re.Match) -> str:
    num, unit = m.group(1), m.group(2)
    words = _UNITS[unit]
    if num.replace(",", "") in ("1", "1.0"):
        first, _, rest = words.partition(" ")
        words = _UNIT_SINGULAR.get(first, first) + (" " + rest if rest else "")
    return f"{_amount(num)} {words}"


def _digits_spoken(s: str) -> str:
    groups = [g for g in re.split(r"[\s\-.()]+", s) if g]
    return ", ".join(" ".join(_ONES[int(d)] for d in g if d.isdigit()) for g in groups)


def _phone(m: re.Match) -> str:
    """Digit by digit for phone numbers (7+ digits in separated groups, or a leading '+')."""
    s = m.group(0)
    grouped = re.search(r"\d[\s\-.()]+\d", s) and not re.fullmatch(r"\d+\.\d+", s)
    if sum(c.isdigit() for c in s) >= 7 and (grouped or s.startswith("+")):
        return ("plus " if s.startswith("+") else "") + _digits_spoken(s)
    return s


def _plain_number(m: re.Match) -> str:
    s = m.group(0)
    if "." in s:
        a, b = s.split(".", 1)
        return _decimal(a, b)
    if "," not in s and len(s) == 4 and 1100 <= int(s) <= 2099 and not s.startswith("0"):
        return year_to_words(int(s))
    if len(s) > 1 and s.startswith("0"):
        return " ".join(_ONES[int(d)] for d in s)  # codes, "007"
    return number_to_words(int(s.replace(",", "")))


_MONTHS = {m[:3].lower(): m for m in ("January", "February", "March", "April", "May", "June", "July", "August",
                                       "September", "October", "November", "December")}
# "December 1", "Dec. 3rd" -> "December first", "December third" (a person says the ordinal)
_MONTH_DAY = re.compile(r"\b(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
                        r"Sep(?:t|tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?![:.,]?\d)")
# Time zone abbreviations are spelled out ("U T C"); "(UTC)" loses its brackets.
_ZONE_ABBR = re.compile(r"\(?\b(UTC|GMT|CET|CEST|EET|EEST|WET|WEST|BST|IST|EST|EDT|CST|CDT|MST|MDT|PST|PDT|AKST|AKDT|"
                        r"HST|JST|KST|AEST|AEDT|ACST|AWST|NZST|NZDT)\b\)?")
# An IANA zone name is said as its city: "America/New_York" -> "New York".
_IANA_ZONE = re.compile(r"\b((?:Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific)/[A-Za-z_]+"
                        r"(?:/[A-Za-z_]+)?)\b")


def normalize_for_speech(text: str) -> str:
    t = unicodedata.normalize("NFC", text)
    # markup small local models leak from their chat templates (<tools>, <tool_call>, <|im_end|>)
    t = re.sub(r"</?(?:tools?|tool_call|tool_response|function[a-z_]*)>|<\|[a-z_]+\|>", " ", t)
    t = _strip_markdown(t)
    t = _EMAIL.sub(lambda m: f"{m.group(1)} at {_spoken_domain(m.group(2))}", t)
    t = _URL.sub(lambda m: _spoken_domain(m.group(1)), t)
    t = _strip_emoji(t)
    t = re.sub(r"(?<![\w.])\+?\d[\d\s\-.()]{5,}\d(?!\w|\.\d|:\d)", _phone, t)
    t = re.sub(r"\b(\d{1,2}):(\d{2})(?::\d{2})?(?:\s*([AaPp])\.?[Mm]\b)?(?![\d:])", _time, t)
    t = re.sub(r"\b(\d{1,2})\s*([AaPp])\.?[Mm]\b\.?",
               lambda m: f"{number_to_words(int(m.group(1)))} {m.group(2).lower()}.m.", t)
    t = re.sub(r"\b([ap])\.m\.(?:\s*\.)", r"\1.m.", t)  # "7:47 AM." must not end in "a.m.."
    t = _MONTH_DAY.sub(lambda m: f"{_MONTHS[m.group(1).lower()[:3]]} {ordinal_to_words(int(m.group(2)))}", t)
    t = _ZONE_ABBR.sub(lambda m: " ".join(m.group(1)), t)
    t = _IANA_ZONE.sub(lambda m: m.group(1).split("/")[-1].replace("_", " "), t)
    t = re.sub(r"([$€£¥])\s?(" + _NUM + r")(?:\s?(million|billion|thousand|trillion)\b)?", _money, t)
    t = re.sub(r"(" + _NUM + r")\s?%", lambda m: _amount(m.group(1)) + " percent", t)
    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    t = re.sub(r"(" + _NUM + r")\s?(" + units + r")(?![\w/])", _unit, t)
    t = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: ordinal_to_words(int(m.group(1))), t)
    t = re.sub(r"(?<![\w.])-(?=\d)", "minus ", t)
    t = re.sub(r"#\s?(?=\d)", "number ", t)
    t = re.sub(r"(?<=\d)\s?[x×]\s?(?=\d)", " by ", t)
    t = re.sub(_NUM, _plain_number, t)
    t = t.replace("&", " and ").replace("%", " percent").replace("@", " at ").replace("=", " equals ")
    t = re.sub(r"\s\+\s|(?<=\w)\+(?=\w)", " plus ", t)
    t = re.sub(r"(?<=\w)\s*/\s*(?=\w)", " or ", t)
    t = re.sub(r"[*_#~^|<>\[\]{}\\]", " ", t)
    t = re.sub(r"\s+([,.!?;:])", r"\1", t)
    t = re.sub(r"[ \t]+", " ", t)
    t = re.sub(r"\s*\n\s*", " ", t)
    return t.strip()
