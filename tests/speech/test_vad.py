import numpy as np
import pytest

from voiceagent.speech.audio import float_to_pcm16, resample
from voiceagent.speech.vad import EndOfTurn, Endpointer, Pause, Resume, SpeechStart

LEAD = 1.0  # seconds of silence before the speech in every signal


def silence(s):
    return np.zeros(int(s * 16000), np.float32)


def run(ep, x16, rate=16000, chunk_ms=20):
    """Feed ``x16`` (float 16 kHz) to ``ep`` as PCM at ``rate`` in chunks; return all events."""
    pcm = float_to_pcm16(resample(x16, 16000, rate))
    n = int(rate * chunk_ms / 1000) * 2
    events = []
    for i in range(0, len(pcm), n):
        events += ep.feed(pcm[i:i + n])
    return events


def kinds(events):
    return [type(e).__name__ for e in events]


@pytest.mark.parametrize("rate", [16000, 8000])
def test_one_end_of_turn_at_the_right_audio_time_in_any_chunking(what_time, speech_bounds, rate):
    x = np.concatenate([silence(LEAD), what_time, silence(1.5)])
    _, last = speech_bounds(x)
    results = []
    for chunk_ms in (20, 30, 1000):
        ev = run(Endpointer(rate, end_of_turn_ms=600, pause_ms=200), x, rate, chunk_ms)
        ends = [e for e in ev if isinstance(e, EndOfTurn)]
        assert len(ends) == 1, kinds(ev)
        # Piper's output is stochastic: a soft first syllable can fall under MIN_SPEECH_MS, so the start
        # may be a word late; it must still be inside the utterance
        assert isinstance(ev[0], SpeechStart) and LEAD - 0.15 <= ev[0].t < last
        assert last + 0.6 <= ends[0].t <= last + 0.6 + 0.25  # decided on the audio clock, not wall time
        assert ends[0].reason == "silence"
        assert len(ends[0].audio) / 16000 == pytest.approx(len(what_time) / 16000, abs=0.45)
        results.append([(type(e).__name__, round(e.t, 4)) for e in ev])
    assert results[0] == results[1] == results[2]


def test_end_of_turn_audio_matches_last_pause_and_is_transcribable(what_time, whisper_base):
    x = np.concatenate([silence(LEAD), what_time, silence(1.0)])
    ev = run(Endpointer(16000), x)
    pauses = [e for e in ev if isinstance(e, Pause)]
    end = ev[-1]
    assert isinstance(end, EndOfTurn) and pauses and not isinstance(ev[-2], Resume)
    assert np.array_equal(pauses[-1].audio, end.audio)  # speculative STT on the pause is reusable
    assert "time" in whisper_base.transcribe(end.audio).text.lower()


def test_short_burst_is_not_a_turn(what_time, speech_bounds):
    first, _ = speech_bounds(what_time)
    start = int(first * 16000)
    burst = what_time[start:start + int(0.12 * 16000)]  # 120 ms of speech, < min_speech_ms
    ep = Endpointer(16000, min_speech_ms=250)
    ev = run(ep, np.concatenate([silence(LEAD), burst, silence(1.5)]))
    assert ev == []
    assert not ep.in_turn and ep.speech_ms == 0
    # the same settings do make a turn from the whole utterance
    assert "EndOfTurn" in kinds(run(ep, np.concatenate([what_time, silence(1.0)])))


def test_pause_then_resume_when_speech_continues(what_time, speech_bounds):
    first, last = speech_bounds(what_time)
    voiced = what_time[int(first * 16000): int(last * 16000)]
    gap = 0.35  # longer than pause_ms, shorter than end_of_turn_ms
    x = np.concatenate([silence(LEAD), voiced, silence(gap), voiced, silence(1.0)])
    ev = run(Endpointer(16000, end_of_turn_ms=600, pause_ms=200), x)
    k = kinds(ev)
    assert k.count("SpeechStart") == 1 and k.count("EndOfTurn") == 1
    i = k.index("Resume")
    assert k[i - 1] == "Pause" and ev[i].t > ev[i - 1].t
    end = ev[-1]
    assert len(end.audio) / 16000 > 2 * len(voiced) / 16000  # one turn holds both halves


def test_speech_ms_grows_during_speech_and_reset_forgets(what_time, speech_bounds):
    ep = Endpointer(16000)
    first, last = speech_bounds(what_time)
    run(ep, np.concatenate([silence(LEAD), what_time[: int((first + 0.5) * 16000)]]))
    assert 300 <= ep.speech_ms <= 650 and ep.speaking
    t = ep.t
    ep.reset()
    assert ep.speech_ms == 0 and not ep.in_turn and ep.t == t  # the audio clock keeps running
    assert "EndOfTurn" not in kinds(run(ep, silence(1.0)))


def test_max_utterance_cuts_a_long_turn(long_utterance):
    ep = Endpointer(16000, max_utterance_s=1.0)
    ev = run(ep, np.concatenate([silence(0.5), long_utterance]))
    ends = [e for e in ev if isinstance(e, EndOfTurn)]
    assert ends and ends[0].reason == "max_length"
    assert ends[0].t - ends[0].start == pytest.approx(1.0, abs=0.05)


def test_flush_closes_a_turn_and_noise_makes_none(what_time):
    ep = Endpointer(16000)
    run(ep, np.concatenate([silence(0.5), what_time]))
    (end,) = ep.flush()
    assert end.reason == "flush"
    noise = (np.random.default_rng(5).standard_normal(16000 * 3) * 0.1).astype(np.float32)
    assert run(Endpointer(16000), noise) == []


def test_webrtc_engine_also_endpoints(what_time):
    ev = run(Endpointer(8000, engine="webrtc"), np.concatenate([silence(LEAD), what_time, silence(1.0)]), 8000)
    assert kinds(ev)[0] == "SpeechStart" and kinds(ev).count("EndOfTurn") == 1
    with pytest.raises(ValueError):
        Endpointer(16000, engine="nope")
    with pytest.raises(ValueError):
        Endpointer(16000, pause_ms=700, end_of_turn_ms=600)
