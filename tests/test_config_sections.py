"""Settings grouped by concern: the same variables, flat access kept, and a process that builds only
some sections is not stopped by a bad value of another's."""
import os
import subprocess
import sys

import pytest

from voiceagent.config import (
    SECTIONS,
    ApiSettings,
    ConfigError,
    EslSettings,
    ForkSettings,
    JobsSettings,
    RedisSettings,
    Settings,
    SpeechSettings,
    load,
    load_sections,
    load_settings,
)

#: Every environment variable voiceagent reads. Renaming one breaks deployments: this list changes
#: only when a setting is added or removed on purpose.
ENV_VARS = """
ACK_AFTER_MS ADMISSION_MAX_LOOP_LAG_MS API_HOST API_MAX_BODY_BYTES API_PORT API_SESSION_HOURS API_SESSION_SECRET API_TOKEN ADMISSION_MAX_WAIT_S ANSWER_INBOUND AUDIO_IDLE_SECONDS BARGE_IN_MIN_MS
BARGE_IN_CONFIRM_MS BARGE_IN_MODE BARGE_IN_PAUSE_MS BARGE_IN_STOP_MS BARGE_IN_WINDOW_MS
BGAPI_TIMEOUT CALL_EVENTS_MAXLEN CALL_RETENTION_DAYS CALLER_ID_NAME CALLER_ID_NUMBER DIALOG DRAIN_SECONDS END_OF_TURN_MS SMART_TURN SMART_TURN_MODEL SMART_TURN_THRESHOLD SMART_TURN_COMPLETE_MS SMART_TURN_MAX_WAIT_MS ESL_COMMAND_TIMEOUT
DIAL_ALLOW_INTERNATIONAL DIAL_ALLOW_PREMIUM DIAL_ALLOW_SIP_URIS DIAL_ALLOWED_GATEWAYS DIAL_ALLOWED_PATTERNS
DIAL_DEFAULT_REGION DIAL_EXTENSION_MAX_DIGITS DIAL_HOME_REGIONS DIAL_VALIDATE_E164
ESL_CONNECT_TIMEOUT ESL_EVENT_QUEUE_MAX ESL_HEALTHY_AFTER_S ESL_NODES ESL_PASSWORD ESL_RECONNECT_MAX_DELAY
FORK_ALLOW_INSECURE FORK_ARRIVAL_TIMEOUT FORK_AUTH_PASSWORD FORK_AUTH_USER FORK_GRACE_SECONDS
FORK_HANDSHAKE_TIMEOUT FORK_HOST FORK_MAX_CONNECTIONS FORK_MAX_FRAME_BYTES FORK_MAX_METADATA_BYTES
FORK_MAX_PENDING_PER_ADDRESS FORK_METADATA_TIMEOUT FORK_PORT FORK_PUBLIC_URL FORK_REFUSAL_LOG_SECONDS FORK_REUSE_PORT
FORK_SAMPLE_RATE GREETING_FILE HISTORY_TURNS INFERENCE_THREADS LLM_API_KEY LLM_BASE_URL LLM_MAX_FAILURES
LLM_MAX_TOKENS LLM_MAX_TOOL_ROUNDS LLM_MODEL LLM_TEMPERATURE LLM_TIMEOUT LLM_WARM_PREFIX LOG_FORMAT LOG_LEVEL LOG_MASK_NUMBERS
MAX_CALLS MAX_CALL_SECONDS MAX_UTTERANCE_S MEDIA_DIRS METRICS_HOST METRICS_PORT MIN_SPEECH_MS MODEL_CACHE_DIR
ORIGINATE_GATEWAY ORIGINATE_TIMEOUT ORPHAN_SWEEP_SECONDS PAUSE_MS PHRASES_FILE PLAYBACK_DIR
PLAYBACK_MARGIN_SECONDS PLAYBACK_MAX_AGE_MINUTES PLAYBACK_MODE PROFILES_FILE RECORD_CALLS RECORDINGS_DIR REDIS_MAX_CONNECTIONS
SCHEDULE_CLAIM_SECONDS SCHEDULE_HISTORY_RUNS SCHEDULE_MISFIRE_GRACE_SECONDS TIMER_MIN_SECONDS CALLER_SCHEDULES_MAX
REDIS_POOL_TIMEOUT REDIS_PREFIX REDIS_SOCKET_TIMEOUT REDIS_URL SESSION_REAP_SECONDS START_FORK_ON_PARK
STT_BEAM_SIZE TAKE_REQUESTS STT_COMPUTE_TYPE STT_DEVICE STT_LANGUAGE STT_MODEL STT_THREADS TOOLS_DIRS TOOL_TIMEOUT TTS_ENGINE
TOOLS_DISABLED TOOLS_RELOAD_CHECK_SECONDS
TTS_LENGTH_SCALE TTS_NOISE_SCALE TTS_NOISE_W TTS_THREADS TTS_VOICE VAD_BATCH VAD_BATCH_WINDOW_MS VAD_ENGINE VAD_THRESHOLD
WEBHOOK_ALLOW_PRIVATE WEBHOOK_DEDUP_SECONDS WEBHOOK_RETRIES WEBHOOK_RETRY_BASE_SECONDS WEBHOOK_SECRET WEBHOOK_TIMEOUT WEBHOOK_URL WEBHOOKS_FILE
WORKER_HEARTBEAT_SECONDS WORKER_HEARTBEAT_TTL WORKER_ID XTTS_MODEL_DIR XTTS_SPEAKER_WAV
CALL_CONCURRENCY_LIMIT QUEUE_MAX_DEPTH SLOT_LEASE_MARGIN_SECONDS DIAL_JOB_RETRIES JOBS_HEARTBEAT_SECONDS
JOBS_MAINTENANCE_SECONDS JOBS_METRICS_PORT FOLLOW_RETRY_SECONDS FOLLOW_STALE_SECONDS DASHBOARD_HOST DASHBOARD_PORT
SPEECH_PREROLL_MS PREEMPTIVE_LLM BACKCHANNEL_WORDS IDLE_REPROMPT_S IDLE_REPROMPTS
OTEL_EXPORTER OTEL_EXPORTER_OTLP_ENDPOINT OTEL_SERVICE_NAME
STT_BACKEND STT_URL STT_API_KEY STT_REMOTE_MODEL STT_TIMEOUT_S STT_RETRIES STT_FALLBACK
TTS_URL TTS_API_KEY TTS_REMOTE_MODEL TTS_REMOTE_VOICE TTS_RESPONSE_FORMAT TTS_PCM_RATE TTS_TIMEOUT_S TTS_RETRIES TTS_FALLBACK
SPEECH_SERVER_HOST SPEECH_SERVER_PORT SPEECH_SERVER_TOKEN SPEECH_SERVER_MAX_UPLOAD_BYTES SPEECH_SERVER_MAX_INPUT_CHARS
SPEECH_SERVER_BATCH SPEECH_SERVER_BATCH_MAX SPEECH_SERVER_BATCH_WAIT_MS
""".split()


def test_the_environment_variables_are_unchanged_and_each_belongs_to_exactly_one_section():
    assert sorted(n.upper() for n in Settings.model_fields) == sorted(ENV_VARS)
    owned = [name for section in SECTIONS for name in section.own_fields()]
    assert sorted(owned) == sorted(Settings.model_fields), "a field in no section, or in two"
    for section in SECTIONS:
        assert section.title, section
        for name in section.own_fields():
            assert section.model_fields[name].description, f"{name.upper()} has no description"


def test_every_env_var_is_read_from_the_environment_by_its_section(monkeypatch):
    monkeypatch.setenv("ESL_COMMAND_TIMEOUT", "7.25")
    monkeypatch.setenv("REDIS_PREFIX", "from-env")
    monkeypatch.setenv("END_OF_TURN_MS", "700")
    s = load_settings()
    assert (s.esl_command_timeout, s.redis_prefix, s.end_of_turn_ms) == (7.25, "from-env", 700)
    assert load(EslSettings).esl_command_timeout == 7.25
    assert load(SpeechSettings).end_of_turn_ms == 700


def test_settings_is_every_section_with_flat_attributes():
    s = load_settings(esl_password="pw", esl_command_timeout=1.5, redis_prefix="p")
    assert all(isinstance(s, section) for section in SECTIONS)
    assert (s.esl_command_timeout, s.redis_prefix) == (1.5, "p")
    assert [c for c in Settings.sections()] == list(SECTIONS)
    assert ApiSettings in SECTIONS and JobsSettings in SECTIONS  # room for the processes to come


def test_a_bad_value_of_a_section_a_process_does_not_read_cannot_stop_it(monkeypatch):
    monkeypatch.setenv("PAUSE_MS", "900")  # speech: not below END_OF_TURN_MS
    monkeypatch.setenv("LLM_BASE_URL", "not a url")  # llm
    monkeypatch.setenv("FORK_HOST", "0.0.0.0")  # fork: open to the network without auth
    with pytest.raises(ConfigError, match="LLM_BASE_URL"):
        load_settings()
    some = load_sections(EslSettings, RedisSettings, esl_password="pw")
    assert some.esl_endpoints() == [("fs1", "127.0.0.1", 8021)] and some.redis_prefix == "voiceagent"
    assert not isinstance(some, ForkSettings) and not hasattr(some, "pause_ms")
    assert set(some.masked()) == {n.upper() for n in EslSettings.model_fields} | {n.upper() for n in RedisSettings.model_fields}


def test_a_bad_value_of_a_section_it_does_read_still_stops_it_naming_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "notaurl")
    with pytest.raises(ConfigError) as exc:
        load_sections(EslSettings, RedisSettings)
    assert str(exc.value).startswith("invalid configuration: REDIS_URL:")
    monkeypatch.setenv("FORK_AUTH_USER", "fs")  # a check across the fork section's fields
    with pytest.raises(ConfigError) as exc:
        load(ForkSettings)
    assert "FORK_AUTH_PASSWORD:" in str(exc.value)


def test_an_override_of_a_setting_the_sections_do_not_have_is_an_error():
    with pytest.raises(TypeError, match="pause_ms"):
        load_sections(EslSettings, RedisSettings, pause_ms=100)


def test_voiceagent_config_prints_every_variable_once_under_its_section_secrets_masked():
    env = dict(os.environ, ESL_PASSWORD="esl-secret-pw", LLM_API_KEY="sk-secret",
               REDIS_URL="redis://admin:redis-secret@127.0.0.1:6379/0")
    out = subprocess.run([sys.executable, "-m", "voiceagent.cli", "config"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    for secret in ("esl-secret-pw", "sk-secret", "redis-secret", "admin"):
        assert secret not in out.stdout, secret
    heading, where = None, {}
    for line in out.stdout.splitlines():
        if line.startswith("# === "):
            heading = line
        elif line and not line.startswith(" "):
            name = line.split("=", 1)[0]
            assert name not in where, f"{name} printed twice"
            where[name] = heading
    core = [f"# === {section.title} ===" for section in SECTIONS]
    assert sorted(n for n, h in where.items() if h in core) == sorted(ENV_VARS)
    for section in SECTIONS:
        for name in section.own_fields():
            assert where[name.upper()] == f"# === {section.title} ===", name
    headings = [line for line in out.stdout.splitlines() if line.startswith("# === ")]
    assert headings[:len(core)] == core
    # then each loaded tool plugin's own settings (the built-in weather tool's Tempest station, token masked)
    assert "# === Weather (WeatherFlow Tempest) ===" in headings[len(core):], headings[len(core):]
    assert where["TEMPEST_TOKEN"] == "# === Weather (WeatherFlow Tempest) ==="
    assert "ESL_PASSWORD=***" in out.stdout and "REDIS_URL=redis://***@127.0.0.1:6379/0" in out.stdout
