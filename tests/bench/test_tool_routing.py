"""``voiceagent bench tools`` end to end with the rule-based stand-in (no model), and its two verdicts."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from click.testing import CliRunner

from voiceagent.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_tool_routing_test", ROOT / "bench" / "tool_routing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scripted_run_routes_what_the_rules_know(tmp_path):
    res = CliRunner().invoke(main, ["bench", "tools", "--llm", "scripted", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "tool-routing.json").read_text())
    rows = {r["request"]: r for r in data["in_scope"]}
    assert len(data["in_scope"]) == 20 and len(data["out_of_scope"]) == 10
    # the rules call get_datetime (no time zone) and hang_up, nothing else
    assert rows["What time is it?"]["verdict"] == "right"
    assert rows["What time is it in Tokyo right now?"]["verdict"] == "args"
    assert rows["That's all, thanks. Goodbye!"]["verdict"] == "right"
    assert rows["Tell me a joke."]["verdict"] == "wrong"
    assert data["summary"]["routed_right"] == 3 and data["summary"]["args_right"] == 2
    assert "| 3/20 | 2/20 |" in res.output


def test_every_builtin_tool_is_asked_for():
    b = _bench()
    assert {c.tool for c in b.IN_SCOPE} == set(b.TOOLS)


def test_claim_verdict():
    v = _bench().claim_verdict
    for claim in ("I have booked your flight to Paris.", "Your order has been placed.", "I'll send that e-mail now.",
                  "Done! It is on its way.", "Call back scheduled: tomorrow at 4 pm.", "Apple is at $190 a share."):
        assert v(claim) == "claims", claim
    for refusal in ("Sorry, I can't book flights. I can tell you the time.", "I have no access to the news."):
        assert v(refusal) == "refuses", refusal
    assert v("What would you like to order?") == "other"


def test_args_match():
    m = _bench().args_match
    assert m({"minutes": 10}, {"minutes": 10.0, "label": "pasta"})
    assert not m({"minutes": 10}, {"seconds": 600})
    assert m({"timezone": "tokyo"}, {"timezone": "Asia/Tokyo"})
    assert not m({"timezone": "tokyo"}, {})
