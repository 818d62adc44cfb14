"""Several utterances through Whisper as one batch: one encoder pass, one batched greedy decode.

Why: Whisper's encoder always reads a 30 s window, so a 2 s phone turn costs as much as a 30 s one;
what a CPU can win is doing the fixed work of N requests together (bigger matrix products, one
decoder loop for N sequences).  faster-whisper's BatchedInferencePipeline batches the VAD chunks of
*one* long file; the speech server needs the utterances of *different* requests batched, so this
drives the same CTranslate2 calls (``encode`` + ``generate``) over a stack of per-request features.
Only requests that share language, temperature and prompt go into one batch (the batcher groups
them); an utterance longer than one window is transcribed on its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np

from .stt import WhisperSegment

if TYPE_CHECKING:  # pragma: no cover
    from .stt import Transcriber

__all__ = ["WINDOW_SAMPLES", "transcribe_batch"]

RATE = 16000
WINDOW_SAMPLES = 30 * RATE  # Whisper's window


def transcribe_batch(stt: "Transcriber", audios: Sequence[np.ndarray], *, language: Optional[str] = None,
                     temperature: float = 0.0, initial_prompt: Optional[str] = None) -> List[List[WhisperSegment]]:
    """Raw Whisper segments for each of ``audios`` (float32 mono 16 kHz), in order; blocks (run it in
    the inference pool)."""
    if len(audios) == 1 or any(len(a) > WINDOW_SAMPLES for a in audios):
        return [stt.raw_segments(a, initial_prompt, language=language, temperature=temperature) for a in audios]
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    model = stt._model
    extractor = model.feature_extractor
    features = np.stack([pad_or_trim(extractor(np.asarray(a, dtype=np.float32))[..., :-1]) for a in audios])
    lang = language or stt.language or "en"
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=lang)
    previous = tokenizer.encode(" " + initial_prompt.strip()) if initial_prompt else []
    prompt = model.get_prompt(tokenizer, previous, without_timestamps=True)
    encoded = model.encode(features)
    sampling = {"sampling_temperature": temperature, "sampling_topk": 0} if temperature > 0 else {}
    results = model.model.generate(
        encoded, [list(prompt) for _ in audios], beam_size=stt.beam_size if not sampling else 1,
        max_length=model.max_length, return_scores=True, return_no_speech_prob=True, suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])), **sampling)
    out: List[List[WhisperSegment]] = []
    for audio, result in zip(audios, results, strict=True):
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        # the score is the length-normalised sum of log-probabilities: back to faster-whisper's average
        avg_logprob = result.scores[0] * len(result.sequences_ids[0]) / (len(result.sequences_ids[0]) + 1)
        text = tokenizer.decode(tokens)
        duration = len(audio) / RATE
        out.append([WhisperSegment(text, float(result.no_speech_prob), float(avg_logprob), 0.0, duration, tokens)]
                   if text.strip() else [])
    return out
