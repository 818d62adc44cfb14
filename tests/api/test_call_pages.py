"""The per-call page renders in headless Chromium and shows the transcript: who said what, what was cut off,
the tool call, the latency waterfall, the recording; the calls list links to it; the browser gets in
through the login form only.  One call's record is written through the worker's real reporter (a turn
with a cut-off answer, a tool and every stage timing), another is a real emulated call, recorded."""
import time

import pytest
from selenium.webdriver.common.by import By

from tests.api.browser import browser  # noqa: F401 - fixture
from tests.fork_helpers import wait_until
from voiceagent.calls.call_state import CallState, Direction
from voiceagent.calls.ports import CallInfo
from voiceagent.calls.turns import ToolCall, Turn
from voiceagent.records.models import new_call_id
from voiceagent.records.reporter import RecordReporter, RecordWriter

EVIL = "<script>alert(1)</script> what is the weather in Oslo?"
SAID = ["It is sunny in Oslo today.", "Tomorrow it will rain, so take an umbrella.", "Anything else?"]
TIMINGS = {"endpoint_wait_ms": 310.0, "stt_ms": 420.0, "stt_wait_ms": 180.0, "llm_ttft_ms": 240.0,
           "llm_first_sentence_ms": 520.0, "tts_first_ms": 95.0, "voice_to_voice_ms": 1105.0,
           "playback_start_ms": 35.0}


def report_call(api):
    """A finished inbound call, told to the worker's RecordReporter as a session tells it."""
    writer = RecordWriter(api.client.records)
    writer.start()
    reporter = RecordReporter(writer, "w-pages")
    info = CallInfo(id=new_call_id(), direction=Direction.INBOUND, caller="+15551230009", callee="+15551230000",
                    node="fs1", worker="w-pages")
    t = time.time()
    for i, state in enumerate((CallState.OFFERED, CallState.CONFIRMED, CallState.ANSWERING, CallState.ACTIVE)):
        reporter.call_state(info, state, t + i * 0.01)
    reporter.call_turn(info, Turn(0, said=["Hello, how can I help?"], heard_by_caller=["Hello, how can I help?"],
                                  kind="greeting"))
    reporter.call_turn(info, Turn(1, heard=EVIL, raw=EVIL, said=list(SAID),
                                  heard_by_caller=[SAID[0], SAID[1] + " —"], interrupted=True,
                                  tools=[ToolCall("get_weather", {"city": "Oslo"}, {"summary": "sunny, 21 C"}, True)],
                                  timings=dict(TIMINGS)))
    reporter.call_barge_in(info, t + 3)
    reporter.call_ended(info, cause="NORMAL_CLEARING", outcome="answered", ended_by="caller", at=t + 5)
    assert writer.flush(10)
    writer.stop()
    return info.id


def recorded_call(make_emulator, make_worker, api, recordings):
    emu = make_emulator()
    make_worker([emu], record_calls=True, recordings_dir=recordings)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_hangup(30), "the greeting call never ended"
    assert wait_until(lambda: (api.client.get(ch.uuid) or False) and api.client.get(ch.uuid).ended
                      and api.client.get(ch.uuid).recording, 20), "the recorded call's record never ended"
    return ch.uuid


def login(browser, api, path):  # noqa: F811
    browser.delete_all_cookies()
    browser.get(api.url + path)
    assert browser.find_element(By.ID, "login"), "no login form without the cookie"
    browser.find_element(By.ID, "token").send_keys(api.settings.api_token.get_secret_value())
    browser.find_element(By.ID, "login-submit").click()
    assert wait_until(lambda: browser.current_url == api.url + path, 20), browser.current_url


def test_the_call_page_shows_the_transcript_cut_offs_tools_waterfall_and_recording_in_chromium(
        browser, start_api, make_emulator, make_worker, tmp_path):  # noqa: F811
    recordings = tmp_path / "recordings"
    api = start_api(recordings_dir=recordings)
    call_id = report_call(api)
    recorded_id = recorded_call(make_emulator, make_worker, api, recordings)

    login(browser, api, f"/ui/calls/{call_id}")
    cookie = browser.get_cookie("voiceagent_ui")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    turn = browser.find_element(By.ID, "turn-1")
    # who said what: the caller's words as text (an utterance is never markup), the agent's sentences
    assert turn.find_element(By.CSS_SELECTOR, ".caller .said").text == EVIL
    assert browser.find_elements(By.TAG_NAME, "script") == []
    heard = [e.text for e in turn.find_elements(By.CSS_SELECTOR, ".agent .sentence.heard")]
    cut = [e.text for e in turn.find_elements(By.CSS_SELECTOR, ".agent del.sentence.cut")]
    unheard = [e.text for e in turn.find_elements(By.CSS_SELECTOR, ".agent s.sentence.unheard")]
    assert (heard, cut, unheard) == ([SAID[0]], [SAID[1]], [SAID[2]])
    assert "interrupted" in turn.find_element(By.CSS_SELECTOR, ".meta").text
    tool = turn.find_element(By.CSS_SELECTOR, ".tool.ok")
    assert tool.find_element(By.CSS_SELECTOR, ".tool-name").text == "get_weather"
    tool.find_element(By.TAG_NAME, "summary").click()
    assert '"city": "Oslo"' in tool.find_element(By.CSS_SELECTOR, ".arguments").text
    assert "sunny, 21 C" in tool.find_element(By.CSS_SELECTOR, ".result").text
    # the waterfall: one bar per stage, placed by its start, as wide as it took
    bars = {g.get_attribute("data-stage"): g for g in turn.find_elements(By.CSS_SELECTOR, "figure.waterfall g.bar")}
    assert set(bars) == {"endpoint wait", "STT", "LLM first token", "LLM first sentence", "TTS first audio",
                         "voice to voice", "playback start"}
    rect = {k: g.find_element(By.TAG_NAME, "rect") for k, g in bars.items()}
    x = {k: float(r.get_attribute("x")) for k, r in rect.items()}
    w = {k: float(r.get_attribute("width")) for k, r in rect.items()}
    assert x["endpoint wait"] < x["STT"] < x["LLM first token"] < x["TTS first audio"] < x["playback start"]
    assert w["voice to voice"] > w["LLM first sentence"] > w["endpoint wait"] > w["playback start"] > 0
    assert rect["STT"].size["width"] > 0, "the bars are not drawn"
    greeting = browser.find_element(By.ID, "turn-0")
    assert greeting.find_element(By.CSS_SELECTOR, ".agent .sentence.heard").text == "Hello, how can I help?"
    assert browser.find_elements(By.ID, "recording") == []  # not recorded

    # the list links to both calls; the recorded one plays its recording (fetched with the cookie)
    browser.get(api.url + "/ui/calls")
    links = {a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#calls a")}
    assert {f"{api.url}/ui/calls/{call_id}", f"{api.url}/ui/calls/{recorded_id}"} <= links
    browser.find_element(By.CSS_SELECTOR, f"#calls a[href='/ui/calls/{recorded_id}']").click()
    assert wait_until(lambda: browser.current_url.endswith(recorded_id), 20)
    audio = browser.find_element(By.ID, "recording")
    assert audio.get_attribute("src") == f"{api.url}/ui/calls/{recorded_id}/recording"
    assert wait_until(lambda: (audio.get_property("duration") or 0) > 1.0, 20), \
        "the browser could not load the recording"
    # filters: only outbound calls -> neither of these inbound calls
    browser.get(api.url + "/ui/calls?direction=outbound")
    assert browser.find_elements(By.CSS_SELECTOR, "#calls a") == []
    assert "No calls match" in browser.find_element(By.ID, "calls").text


@pytest.mark.parametrize("path", ["/ui/calls", "/ui/calls/{id}"])
def test_without_the_cookie_the_browser_gets_the_login_page(browser, api, path):  # noqa: F811
    call_id = report_call(api)
    browser.delete_all_cookies()
    browser.get(api.url + path.format(id=call_id))
    assert browser.find_element(By.ID, "login") and browser.find_elements(By.ID, "transcript") == []
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.ID, "login-submit").click()
    assert wait_until(lambda: browser.find_elements(By.ID, "login-error"), 20)
    assert browser.get_cookie("voiceagent_ui") is None
