"""Hearing and speaking: audio utilities (audio), offline model location (models), the inference
thread pool every model call goes through (inference), VAD + turn endpointing (vad), Whisper STT
(stt) and Piper/XTTS TTS (tts).  Import the submodules directly; this package imports no model code."""
