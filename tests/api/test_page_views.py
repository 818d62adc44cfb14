"""How a turn's record becomes the call page's rows: each sentence as the caller heard it, and the stages
of the waterfall where they started."""
from voiceagent.api.page_views import sentences, stages, turn_views
from voiceagent.records.models import CallRecord, TurnRecord


def test_an_acknowledgement_a_cut_sentence_and_one_never_played():
    turn = TurnRecord(index=2, ack="One moment.", agent_text=["It is ten.", "And sunny.", "Bye."],
                      heard=["One moment.", "It is ten.", "And sunny. —"], interrupted=True)
    assert [(s.text, s.status) for s in sentences(turn)] == [
        ("One moment.", "heard"), ("It is ten.", "heard"), ("And sunny.", "cut"), ("Bye.", "unheard")]
    assert [(s.text, s.status) for s in sentences(TurnRecord(index=1, agent_text=["Hi."]))] == [("Hi.", "unheard")]


def test_stages_start_where_the_one_before_ended_and_missing_timings_draw_nothing():
    bars = {b.stage: (b.start_ms, b.ms) for b in stages({"endpoint_wait_ms": 300, "stt_wait_ms": 100,
                                                          "llm_ttft_ms": 200, "llm_first_sentence_ms": 400,
                                                          "tts_first_ms": 50, "voice_to_voice_ms": 900,
                                                          "playback_start_ms": 30})}
    assert bars == {"endpoint wait": (0, 300), "STT": (300, 100), "LLM first token": (400, 200),
                    "LLM first sentence": (400, 400), "TTS first audio": (800, 50), "voice to voice": (0, 900),
                    "playback start": (900, 30)}
    assert stages({}) == [] and [b.stage for b in stages({"voice_to_voice_ms": 5})] == ["voice to voice"]
    rec = CallRecord(id="c1", direction="inbound", created=100.0, turns=[
        TurnRecord(index=1, at=101.5, timings={"voice_to_voice_ms": 1000, "endpoint_wait_ms": 250}),
        TurnRecord(index=2, at=104.0, kind="dtmf")])
    views = turn_views(rec)
    assert views[0].offset == "+1.5 s" and views[1].bars == []
    v2v = next(b for b in views[0].bars if b.stage == "voice to voice")
    assert v2v.width == 600 and next(b for b in views[0].bars if b.stage == "endpoint wait").width == 150
