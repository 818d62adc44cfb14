"""Semantic end-of-turn: the policy with fixed numbers, the real smart-turn model on Piper speech, and
the endpointer ending (or not ending) a turn on the model's decision, all on the audio clock."""
import gevent
import numpy as np
import pytest

from tests.fork_helpers import wait_until
from voiceagent.speech.audio import float_to_pcm16, pcm16_to_float
from voiceagent.speech.end_of_turn import EndOfTurnPolicy, TurnEnder, text_cue
from voiceagent.speech.models import ModelNotAvailable
from voiceagent.speech.turn_model import TurnModel, features, smart_turn_path
from voiceagent.speech.vad import EndOfTurn, Endpointer, Pause, Resume

POLICY = EndOfTurnPolicy(threshold=0.5, complete_ms=250, max_wait_ms=1200)


# --- the policy, with fixed probabilities and transcripts -----------------------------------------
def test_a_confident_model_ends_the_turn_after_the_short_silence():
    d = POLICY.decide(0.93)
    assert (d.verdict, d.reason, d.hold_ms) == ("complete", "model", 250)


def test_a_trailing_filler_or_conjunction_keeps_waiting_even_when_the_model_says_complete():
    for text in ("I'd like to book a table and", "So, um", "I need it because", "Let me think...", "It's for the"):
        d = POLICY.decide(0.9, text)
        assert (d.verdict, d.reason, d.hold_ms) == ("incomplete", "continuing", 1200), text


def test_a_question_in_the_transcript_ends_a_flat_intoned_turn_early():
    d = POLICY.decide(0.1, "What time is it?")
    assert (d.verdict, d.reason, d.hold_ms) == ("complete", "question", 250)


def test_an_incomplete_statement_waits_up_to_the_cap_and_never_longer():
    assert POLICY.decide(0.2, "I'd like to book.").hold_ms == 1200  # Whisper's full stop is not trusted
    assert POLICY.decide(0.2, "").reason == "no_words"
    assert POLICY.decide(0.2, None).hold_ms == 1200
    assert EndOfTurnPolicy(complete_ms=5000, max_wait_ms=900).decide(0.99).hold_ms == 900


def test_text_cues():
    assert text_cue("What's the weather like?") == "question"
    assert text_cue("Thanks, goodbye.") == "sentence"
    assert text_cue("My name is John and") == "continuing"
    assert text_cue("Um,") == "continuing"
    assert text_cue("  ") is None and text_cue(None) is None


# --- the real model ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def turn_model(pool):
    return TurnModel(smart_turn_path(), pool=pool)


@pytest.fixture(scope="module")
def say(piper):
    def say(text):
        pcm, rate = piper.synthesize(text, 16000)
        assert rate == 16000
        return pcm16_to_float(pcm)
    return say


def test_the_packaged_model_is_found_without_importing_pipecat():
    import sys

    p = smart_turn_path()
    assert p.name == "smart-turn-v3.2-cpu.onnx" and p.stat().st_size > 1_000_000
    assert "pipecat" not in sys.modules


def test_a_missing_model_is_a_clear_error():
    with pytest.raises(ModelNotAvailable, match="SMART_TURN_MODEL"):
        smart_turn_path("/nonexistent/smart-turn.onnx")


def test_features_are_the_last_eight_seconds_padded_at_the_start(say):
    x = say("What time is it?")
    f = features(x)
    assert f.shape == (80, 800) and f.dtype == np.float32
    long = np.concatenate([np.random.default_rng(0).normal(0, 0.1, 16000 * 12).astype(np.float32), x])
    assert np.allclose(features(long), features(long[-8 * 16000:]))  # only the end counts


def test_a_complete_question_scores_higher_than_a_cut_fragment(turn_model, say):
    tail = np.zeros(1920, dtype=np.float32)  # the PAUSE_MS of silence the model hears at a pause
    complete = turn_model.probability(np.concatenate([say("Could you move my appointment to Tuesday?"), tail]))
    fragment = turn_model.probability(np.concatenate([say("I'd like to book, um"), tail]))
    assert complete >= 0.5 > fragment, (complete, fragment)
    assert complete - fragment > 0.3, (complete, fragment)


# --- the endpointer ends the turn on the decision (audio clock, decision awaited before feeding on) ---
def run_call(ep, ender, audio, decided):
    """Feed ``audio`` in 20 ms chunks; at each Pause wait for the decision before feeding on."""
    events = []
    pcm = float_to_pcm16(audio)
    for i in range(0, len(pcm), 640):
        for ev in ep.feed(pcm[i:i + 640]):
            events.append(ev)
            if isinstance(ev, Resume):
                assert ep.hold_ms is None, "the hold of a pause the caller talked through was kept"
            if isinstance(ev, Pause):
                n = len(decided)
                ender.pause(ev.audio, lambda: None)
                assert wait_until(lambda n=n: len(decided) > n, 10), "no decision"
                assert decided[-1].applied
    return events


def make(turn_model, end_of_turn_ms=1200):
    ep = Endpointer(16000, end_of_turn_ms=end_of_turn_ms, pause_ms=120)
    decided = []
    ender = TurnEnder(POLICY, turn_model, ep, gevent.spawn, emit=decided.append)
    return ep, ender, decided


def gap(seconds):
    return np.zeros(int(seconds * 16000), dtype=np.float32)


def test_a_complete_question_ends_after_the_short_silence(turn_model, say):
    ep, ender, decided = make(turn_model)
    events = run_call(ep, ender, np.concatenate([gap(0.3), say("Could you move my appointment to Tuesday?"), gap(2)]),
                      decided)
    ends = [e for e in events if isinstance(e, EndOfTurn)]
    assert len(ends) == 1 and decided[-1].verdict == "complete", decided
    assert ends[0].silence_ms < 600  # END_OF_TURN_MS would have waited 600 ms
    assert abs(ends[0].silence_ms - decided[-1].hold_ms) <= ep.frame_ms


def test_a_mid_sentence_pause_does_not_end_the_turn(turn_model, say):
    ep, ender, decided = make(turn_model)
    audio = np.concatenate([gap(0.3), say("I'd like to book, um"), gap(0.9), say("a table for two."), gap(2)])
    events = run_call(ep, ender, audio, decided)
    kinds = [type(e).__name__ for e in events]
    assert any(d.verdict == "incomplete" for d in decided), decided
    assert "Resume" in kinds and kinds.count("EndOfTurn") == 1, kinds
    end = next(e for e in events if isinstance(e, EndOfTurn))
    assert len(end.audio) > len(say("I'd like to book, um")) + 0.9 * 16000  # the whole request is one turn
    assert ep.hold_ms is None  # reset with the turn


def test_a_decision_for_a_pause_the_caller_talked_through_is_dropped(turn_model, say):
    ep, ender, decided = make(turn_model)
    pcm = float_to_pcm16(np.concatenate([gap(0.3), say("What time is it?"), gap(0.2)]))
    pause = next(e for e in ep.feed(pcm) if isinstance(e, Pause))
    ep.feed(float_to_pcm16(say("and tomorrow")[:4000]))  # the caller carries on before the model answers
    assert ep.pause_index == 1 and not ep.paused
    g = gevent.spawn(ender._decide, ep.pause_index, gevent.spawn(ender._probability, pause.audio), None)
    g.join(10)
    assert ep.hold_ms is None and [d.applied for d in decided] == [False]
