"""``voiceagent speech-server``: OpenAI's audio API (transcriptions, speech) over our local faster-whisper
and Piper (and Coqui XTTS when installed), so many voice workers can share one loaded model, on a GPU
machine or on the same CPU box.  See README "Speech on another machine"."""
