"""The speech section: VAD and endpointing, Whisper STT, Piper/XTTS TTS, the inference pool."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from .base import Section


class SpeechSettings(Section):
    title = "speech: VAD and turn-taking, STT, TTS, inference threads (speech/)"

    stt_model: str = Field(default="base", description="Whisper model: 'base' (packaged, default), 'tiny.en' (packaged), or a CTranslate2 model directory.")
    stt_language: str = Field(default="en", description="Language code passed to Whisper (fixed: auto-detection costs ~0.5 s per turn).")
    stt_device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Whisper device; 'auto' = cuda when CTranslate2 sees a GPU, else cpu.")
    stt_compute_type: str = Field(default="int8", description="CTranslate2 compute type for Whisper (int8, int8_float16, float16, float32).")
    stt_threads: int = Field(default=2, ge=1, description="CPU threads one Whisper call uses.")
    stt_beam_size: int = Field(default=1, ge=1, description="Whisper beam size (1 = greedy, fastest).")
    tts_engine: Literal["piper", "xtts", "remote"] = Field(default="piper", description="Speech synthesizer: 'piper' (default, fast on CPU), 'xtts' (needs the 'xtts' extra and ideally a GPU) or 'remote' (POST TTS_URL/audio/speech: our speech server or any OpenAI-compatible one).")
    tts_voice: str = Field(default="en_US-joe-medium", description="Piper voice: a packaged name or the path of a .onnx file (with .onnx.json beside it).")
    tts_threads: int = Field(default=1, ge=1, description="CPU threads one Piper synthesis uses.")
    tts_length_scale: Optional[float] = Field(default=None, gt=0, le=4, description="Piper speaking pace (> 1 slower); unset = the voice's own (1.0 for joe-medium).")
    tts_noise_scale: Optional[float] = Field(default=None, ge=0, le=2, description="Piper generator noise; unset = the voice's own (0.667). 0 makes synthesis deterministic (the tests use 0).")
    tts_noise_w: Optional[float] = Field(default=None, ge=0, le=2, description="Piper phoneme-duration noise; unset = the voice's own (0.8). 0 makes timing deterministic (the tests use 0).")
    xtts_model_dir: str = Field(default="", description="Directory of a Coqui XTTS v2 model (used when TTS_ENGINE=xtts).")
    xtts_speaker_wav: str = Field(default="", description="Reference WAV of the voice XTTS clones (TTS_ENGINE=xtts).")
    vad_engine: Literal["silero", "webrtc"] = Field(default="silero", description="Voice activity detector: 'silero' (accurate, ~0.1 ms/32 ms) or 'webrtc' (cheaper, more false triggers on noise).")
    vad_batch: bool = Field(default=True, description="Silero VAD for all calls of a worker in one ONNX run per VAD_BATCH_WINDOW_MS, in a native thread off the event loop (speech/vad_batch.py; same decisions as per call); off = each call's chunk runs inline in its greenlet (bench/load.py: the loop saturates sooner).")
    vad_batch_window_ms: float = Field(default=10.0, ge=0, le=30, description="Longest a 32 ms VAD chunk waits for the other calls' chunks to join its batched run, ms (VAD_BATCH=on; 0 = run whatever is pending at once).")
    vad_threshold: float = Field(default=0.5, gt=0, lt=1, description="Silero speech probability above which a chunk counts as speech.")
    end_of_turn_ms: int = Field(default=600, ge=100, le=5000, description="Silence after speech that ends the caller's turn, ms.")
    pause_ms: int = Field(default=120, ge=0, le=5000, description="Silence after speech that starts speculative transcription, ms (0 = off; must be < END_OF_TURN_MS). 120 leaves Whisper base 480 ms of the 600 ms end-of-turn window to finish in (bench/RESULTS.md).")
    smart_turn: bool = Field(default=True, description="Semantic end-of-turn (speech/end_of_turn.py): at each pause the smart-turn v3 model (packaged in pipecat-ai) and the speculative transcript decide whether the caller is done; off = every turn ends after END_OF_TURN_MS of silence. Needs PAUSE_MS > 0.")
    smart_turn_model: str = Field(default="", description="Path of a smart-turn v3 ONNX file; empty = the one packaged in pipecat-ai 1.14.0 (requirements-turn.txt).")
    smart_turn_threshold: float = Field(default=0.5, gt=0, lt=1, description="smart-turn probability at or above which the turn counts as complete.")
    smart_turn_complete_ms: int = Field(default=250, ge=0, le=5000, description="Silence that ends a turn judged complete (by the model, or a question in the transcript), ms.")
    smart_turn_max_wait_ms: int = Field(default=1200, ge=100, le=10000, description="Longest silence before a turn judged incomplete ends anyway (a flat-intoned complete question never waits longer), ms.")
    min_speech_ms: int = Field(default=250, ge=0, description="Shortest speech that can make a turn; shorter bursts (clicks, coughs) are ignored, ms.")
    speech_preroll_ms: int = Field(default=600, ge=0, le=2000, description="Audio kept from before the detected speech onset and sent to Whisper with the turn, ms: a soft first word ('Is the restaurant open...') starts before the VAD is sure, and 200 ms lost it.")
    max_utterance_s: float = Field(default=30.0, gt=0, description="A turn is cut after this much audio even if the caller keeps talking, s.")
    ack_after_ms: int = Field(default=1500, ge=0, le=10000, description="If no answer is playing this long after the caller's last word, say a short acknowledgement (the profile's 'thinking' phrase, e.g. 'One moment.') so the caller is not left in silence; 0 = never.")
    barge_in_min_ms: int = Field(default=400, ge=0, description="Caller speech needed to interrupt the agent's playback, ms ('mm-hm' and coughs do not).")
    barge_in_mode: Literal["pause", "stop"] = Field(default="pause", description="'pause': caller speech over the agent pauses the playback at once (uuid_fileman pause) and a transcript decides: words stop it, a cough or backchannel resumes it where it paused. 'stop': the old rule, BARGE_IN_MIN_MS of speech stops it.")
    barge_in_pause_ms: int = Field(default=200, ge=20, le=2000, description="Speech accumulated within BARGE_IN_WINDOW_MS (short pauses do not reset it) that pauses the agent's playback, ms (BARGE_IN_MODE=pause).")
    barge_in_window_ms: int = Field(default=1000, ge=100, le=5000, description="Window over which caller speech is accumulated for BARGE_IN_PAUSE_MS and BARGE_IN_STOP_MS, ms.")
    barge_in_confirm_ms: int = Field(default=1200, ge=100, le=10000, description="Longest the playback stays paused before what the caller said so far is transcribed and decides (words: stop; backchannel/noise: resume), ms; earlier when the caller falls silent.")
    barge_in_stop_ms: int = Field(default=900, ge=100, le=10000, description="Speech accumulated since the onset that stops the paused agent without waiting for the transcript (no backchannel is that long), ms.")
    inference_threads: int = Field(default=0, ge=0, description="Native threads that run model inference (0 = cores // STT_THREADS, at least 1).")
    model_cache_dir: Path = Field(default=Path("~/.cache/voiceagent").expanduser(), description="Where packaged models are assembled once (Whisper base is shipped split in two).")

    @model_validator(mode="after")
    def _pause_before_end_of_turn(self) -> "SpeechSettings":
        if self.pause_ms and self.pause_ms >= self.end_of_turn_ms:
            raise ValueError(f"PAUSE_MS ({self.pause_ms}) must be below END_OF_TURN_MS ({self.end_of_turn_ms}), or 0 (off)")
        return self
