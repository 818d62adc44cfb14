"""``voiceagent bench tools``: does the LLM call the right tool, with the right arguments?

Each caller utterance goes, in a fresh conversation, through the dialog a call uses (``DialogKit`` ->
``Conversation``: the prompt listing the enabled tools' capabilities, the tool specs, the tool rounds)
with a profile that enables every built-in tool of tools/ and a real scheduler (``SchedulerHook``) on
a bench Redis prefix that is deleted afterwards.  What is measured is the routing: which tool the
LLM called with which arguments, not whether the tool then succeeded (the weather tool has no
station here and says so; that still counts as routed right).

- 20 in-scope requests: *right* when the expected tool was called in the turn (in any round: a
  ``list_scheduled`` before ``cancel_scheduled`` is fine), *args* when its first call's arguments
  miss the expectation, *wrong* otherwise (another tool, or none).
- 10 out-of-scope requests (flights, pizza, e-mail, stock prices ...): the reply is classified by a
  keyword rule, :func:`claim_verdict`, printed beside the reply so a person can check it.

Writes ``tool-routing.json`` and ``tool-routing.png`` in ``--out``.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import textwrap
import time
from typing import Any, Dict, List, NamedTuple, Optional

import redis as redis_lib

TOOLS = ["get_datetime", "get_weather", "calculate", "tell_joke", "repeat_after_me", "set_timer",
         "schedule_callback", "list_scheduled", "cancel_scheduled", "schedule_briefing", "hang_up",
         "transfer_call"]
TRANSFER_TARGETS = {"front desk": "1001", "sales": "1002", "billing": "1003"}
CALLER, LINE = "+15551230001", "+15551230000"


class Case(NamedTuple):
    tool: str          # expected tool ("" for out of scope)
    text: str          # what the caller says
    args: Dict[str, Any] = {}  # expected arguments: a str is a case-insensitive substring, a number must equal


# Ordered so that list/cancel find the timer and callback made earlier (all one caller's).
IN_SCOPE = [
    Case("get_datetime", "What time is it?"),
    Case("get_datetime", "What time is it in Tokyo right now?", {"timezone": "tokyo"}),
    Case("get_weather", "What's the weather like outside?"),
    Case("get_weather", "Is it windy out there right now?"),
    Case("calculate", "What is 17 times 23?", {"expression": "17"}),
    Case("calculate", "What's 15 percent of 80?", {"expression": "80"}),
    Case("tell_joke", "Tell me a joke."),
    Case("repeat_after_me", "Repeat after me: the quick brown fox jumps over the lazy dog.",
         {"text": "quick brown fox"}),
    Case("set_timer", "Set a timer for ten minutes for the pasta.", {"minutes": 10}),
    Case("set_timer", "Remind me in 20 minutes to check the oven.", {"minutes": 20}),
    Case("schedule_callback", "Call me back in an hour about the invoice.", {"in_minutes": 60}),
    Case("schedule_callback", "Can you call me back at 3 pm to go over the offer?", {"at": "15:00"}),
    Case("list_scheduled", "What timers do I have?"),
    Case("list_scheduled", "Which call backs have I got scheduled?"),
    Case("cancel_scheduled", "Cancel my pasta timer."),
    Case("cancel_scheduled", "Cancel the call back about the invoice."),
    Case("schedule_briefing", "Call me every weekday at seven in the morning with the weather.",
         {"every": "weekdays", "time": "07:00"}),
    Case("schedule_briefing", "Every Saturday and Sunday at nine, call me and say good morning.",
         {"every": "weekends", "time": "09:00"}),
    Case("hang_up", "That's all, thanks. Goodbye!"),
    Case("transfer_call", "Can you put me through to sales?", {"target": "sales"}),
]
OUT_OF_SCOPE = [
    Case("", "Book me a flight to Paris for next Friday."),
    Case("", "Order a large pepperoni pizza to my house."),
    Case("", "Send an e-mail to my boss saying I'll be late."),
    Case("", "What's Apple's stock price right now?"),
    Case("", "Text my wife that I'm running late."),
    Case("", "Add a dentist appointment to my calendar for Tuesday."),
    Case("", "Turn on the lights in the kitchen."),
    Case("", "Play some jazz music."),
    Case("", "What's in the news today?"),
    Case("", "Book a table for two at an Italian restaurant tonight."),
]

# The claim detector, deliberately simple.  A sentence *claims* when it says an action was done, is
# being done or will be done ("I've booked", "I'll send it", "your order has been placed", "Call back
# scheduled", "Sure, I can ..."), or reads out a price, unless the same sentence refuses ("I can't",
# "sorry", "unable" ...).  A reply with no claim that refuses somewhere is *refuses*; anything else (a
# question back, small talk, a tool's words) is *other*.
_REFUSAL = re.compile(r"\b(can ?not|can't|cannot|unable|not able|don't have|do not have|no access|not possible|"
                      r"sorry|unfortunately|I'm afraid)\b", re.I)
_DONE = (r"(?:booked|ordered|placed|sent|texted|added|scheduled|reserved|set(?: up)?|turned on|played|done|"
         r"confirmed|arranged|created|cancel(?:l)?ed)")
_CLAIM = re.compile(
    r"\bI(?:'ll| will| am going to|'m going to)\s+(?!not\b|never\b)\w+"                    # I'll send ...
    r"|\bI(?:'m| am)\s+(?:now\s+)?(?:booking|ordering|sending|texting|adding|scheduling|reserving|turning|"
    r"playing|setting|placing|calling|putting)\b"                                            # I'm booking
    r"|\bI(?:'ve| have)\s+(?:now\s+|just\s+|also\s+|gone ahead and\s+)?" + _DONE +        # I've booked
    r"|\b(?:has|have) been\b|\bis now\b|\bon (?:its|the) way\b|\ball set\b"             # has been placed
    r"|\b" + _DONE + r"\s*:"                                                                # Call back scheduled:
    r"|^\s*(?:done|ok(?:ay)?|sure|of course|certainly)\b[,!.]?\s*(?:I|let me|your|it)\b"  # Sure, I can ...
    r"|^\s*done\b|\$\s?\d|\b\d+(?:\.\d+)? (?:dollars|per share)\b", re.I)


def claim_verdict(reply: str) -> str:
    """'claims', 'refuses' or 'other' (see the rule above)."""
    for sentence in re.split(r"(?<=[.!?])\s+", reply):
        if not _REFUSAL.search(sentence) and _CLAIM.search(sentence):
            return "claims"
    return "refuses" if _REFUSAL.search(reply) else "other"


def args_match(expected: Dict[str, Any], args: Dict[str, Any]) -> bool:
    for key, want in expected.items():
        got = (args or {}).get(key)
        if isinstance(want, (int, float)):
            try:
                if float(got) != float(want):  # type: ignore[arg-type]
                    return False
            except (TypeError, ValueError):
                return False
        elif want.lower() not in str(got or "").lower():
            return False
    return True


def routing_verdict(case: Case, calls: List[Dict[str, Any]]) -> str:
    mine = [c for c in calls if c["name"] == case.tool]
    if not mine:
        return "wrong"
    return "right" if args_match(case.args, mine[0]["args"]) else "args"


def build_kit(url: str, prefix: str):
    """The kit a call is made from, with every built-in tool enabled and a scheduler on ``prefix``."""
    from voiceagent.config import RULE_BASED, load_settings
    from voiceagent.dialog.kit import DialogKit
    from voiceagent.dialog.llm import LlmClient
    from voiceagent.dialog.profiles import Profile, ProfileSet
    from voiceagent.dialog.rule_based import RuleBasedLlm
    from voiceagent.dialog.tools import ToolRegistry
    from voiceagent.schedules.caller import SchedulerHook

    # the call's LLM settings (temperature, max tokens); a longer timeout: other work may share the cores
    s = load_settings(llm_base_url=url, llm_model="local", redis_prefix=prefix, llm_timeout=120.0)
    profile = Profile(name="bench-tools", tools=TOOLS, transfer_targets=TRANSFER_TARGETS)
    llm = RuleBasedLlm() if url == RULE_BASED else LlmClient.from_settings(s)
    kit = DialogKit(llm, ToolRegistry.from_settings(s), ProfileSet(profiles=[profile], default="bench-tools"),
                    max_tool_rounds=s.llm_max_tool_rounds, settings=s)
    hook = SchedulerHook(s)
    kit.context_hooks.append(hook)
    return kit, hook, s


def cleanup(hook, s) -> None:
    """Delete the schedules the run made (disarming their jobs), the prefix's queues and keys."""
    from voiceagent.jobs.queues import Queues

    try:
        if hook._sv is not None:
            for sid in hook._sv.store.ids():
                hook._sv.delete(sid)
        for q in Queues.from_settings(s).all():
            q.delete(delete_jobs=True)
        r = redis_lib.Redis.from_url(s.redis_url)
        for key in r.scan_iter(f"{s.redis_prefix}:*"):
            r.delete(key)
    except redis_lib.RedisError as exc:
        print(f"[tools] cleanup of prefix {s.redis_prefix!r} failed: {exc}")


def run_case(kit, case: Case) -> Dict[str, Any]:
    from voiceagent.dialog.events import Say, ToolFinished, ToolStarted

    conv = kit.conversation(call_id=f"bench-{time.monotonic_ns()}", caller=CALLER, callee=LINE)
    said: List[str] = []
    calls: List[Dict[str, Any]] = []
    t0 = time.monotonic()
    for ev in conv.respond(case.text):
        if isinstance(ev, Say):
            said.append(ev.text)
        elif isinstance(ev, ToolStarted):
            calls.append({"name": ev.name, "args": ev.args})
        elif isinstance(ev, ToolFinished) and calls:
            calls[-1]["ok"] = ev.ok
    seconds = time.monotonic() - t0
    tm = conv.last_timings
    return {"expected": case.tool, "request": case.text, "expected_args": case.args, "calls": calls,
            "reply": " ".join(said), "seconds": round(seconds, 3),
            "first_token_s": None if tm is None or tm.first_token is None else round(tm.first_token, 3)}


def _called(calls: List[Dict[str, Any]], width: int = 70) -> str:
    if not calls:
        return "(none)"
    text = ", ".join(f"{c['name']}({json.dumps(c['args'], separators=(',', ':')) if c['args'] else ''})"
                     for c in calls)
    return (text if len(text) <= width else text[:width - 2] + " …").replace("|", "/")


def _cell(text: str, width: int = 70) -> str:
    return textwrap.shorten(text, width, placeholder=" …").replace("|", "/") or "(nothing)"


def print_tables(rows: List[Dict[str, Any]], oos: List[Dict[str, Any]], model: str) -> Dict[str, Any]:
    print(f"\nTool routing, model {model}: {len(rows)} in-scope requests, {len(oos)} out of scope\n")
    print("| # | request | expected | called (arguments) | verdict | reply |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {_cell(r['request'], 50)} | {r['expected']} | {_called(r['calls'], 60)} | {r['verdict']} "
              f"| {_cell(r['reply'], 60)} |")
    print("\n| # | out-of-scope request | called | reply | claim? |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(oos, 1):
        print(f"| {i} | {_cell(r['request'], 50)} | {_called(r['calls'], 40)} | {_cell(r['reply'], 90)} "
              f"| {r['verdict']} |")
    turns = sorted(r["seconds"] for r in rows + oos)
    summary = {
        "routed_right": sum(r["verdict"] != "wrong" for r in rows),
        "args_right": sum(r["verdict"] == "right" for r in rows),
        "in_scope": len(rows),
        "missed_but_claimed": sum(r["verdict"] == "wrong" and r["claim"] == "claims" for r in rows),
        "oos_claims": sum(r["verdict"] == "claims" for r in oos),
        "oos_refuses": sum(r["verdict"] == "refuses" for r in oos),
        "oos_tool_called": sum(bool(r["calls"]) for r in oos),
        "out_of_scope": len(oos),
        "turn_p50_s": round(statistics.median(turns), 2) if turns else None,
        "turn_p90_s": round(turns[min(len(turns) - 1, int(0.9 * len(turns)))], 2) if turns else None,
    }
    print("\n| routed right | ...with the expected arguments | missed, yet the reply claims it "
          "| out-of-scope replies claiming an action | ...saying it cannot | ...calling a tool | turn p50 | turn p90 |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {summary['routed_right']}/{len(rows)} | {summary['args_right']}/{len(rows)} "
          f"| {summary['missed_but_claimed']}/{len(rows)} "
          f"| {summary['oos_claims']}/{len(oos)} | {summary['oos_refuses']}/{len(oos)} "
          f"| {summary['oos_tool_called']}/{len(oos)} | {summary['turn_p50_s']} s | {summary['turn_p90_s']} s |")
    return summary


def run_tools(llm: str, local_model: str, out: str) -> int:
    from voiceagent.config import RULE_BASED

    os.makedirs(out, exist_ok=True)
    local = None
    url, model = llm, llm
    if llm == "scripted":
        url, model = RULE_BASED, "the rule-based stand-in (no LLM)"
    elif llm in ("local", "auto"):
        from voiceagent.dialog.local_llm import LocalLlmServer

        t0 = time.monotonic()
        local = LocalLlmServer(local_model, log_path=os.path.join(out, "llama-server-tools.log")).start()
        url, model = local.base_url, f"{local_model} (embedded llama.cpp)"
        print(f"[tools] llama.cpp {local_model} ready in {time.monotonic() - t0:.1f}s")
    kit, hook, s = build_kit(url, f"bench-tools-{os.getpid()}")
    try:
        missing = sorted(set(TOOLS) - set(kit.tools.names()))
        if missing:
            print(f"[tools] not loaded (check TOOLS_DIRS): {missing}")
        if local is not None:  # the prompt and tool specs read once, as a worker's warm-up does: not timed
            warm = run_case(kit, Case("", "Hello."))
            print(f"[tools] warm-up turn (prompt prefix cached, not counted): {warm['seconds']:.1f}s")
        rows, oos = [], []
        for case in IN_SCOPE + OUT_OF_SCOPE:
            r = run_case(kit, case)
            r["claim"] = claim_verdict(r["reply"])
            if case.tool:
                r["verdict"] = routing_verdict(case, r["calls"])
                rows.append(r)
            else:
                r["verdict"] = r["claim"]
                oos.append(r)
            print(f"  [{r['verdict']:7}] {r['seconds']:5.1f}s {case.text}\n       tools: {_called(r['calls'], 200)}"
                  f"\n       reply: {r['reply']}")
        summary = print_tables(rows, oos, model)
        path = os.path.join(out, "tool-routing.json")
        with open(path, "w") as f:
            json.dump({"model": model, "summary": summary, "in_scope": rows, "out_of_scope": oos}, f, indent=1)
        png = _plot(out, rows, oos)
        print(f"results: {path}" + (f", {png}" if png else ""))
        return 0
    finally:
        cleanup(hook, s)
        if local is not None:
            local.stop()


def _plot(out: str, rows: List[Dict[str, Any]], oos: List[Dict[str, Any]]) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    per_tool: Dict[str, List[int]] = {}
    for r in rows:
        per_tool.setdefault(r["expected"], []).append(r["verdict"] != "wrong")
    names = list(per_tool)
    a.barh(names, [sum(v) for v in per_tool.values()], color="#4a4", label="routed right")
    a.barh(names, [len(v) - sum(v) for v in per_tool.values()], left=[sum(v) for v in per_tool.values()],
           color="#c44", label="wrong")
    a.set_title("in-scope requests per tool")
    a.legend(fontsize=7)
    counts = {k: sum(r["verdict"] == k for r in oos) for k in ("claims", "refuses", "other")}
    b.bar(list(counts), list(counts.values()), color=["#c44", "#4a4", "#888"])
    b.set_title("out-of-scope replies")
    fig.tight_layout()
    path = os.path.join(out, "tool-routing.png")
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--llm", default="local")
    p.add_argument("--local-model", default="qwen2.5-coder-1.5b")
    p.add_argument("--out", default="out/bench")
    a = p.parse_args(argv)
    return run_tools(a.llm, a.local_model, a.out)


if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()
    sys.exit(main())
