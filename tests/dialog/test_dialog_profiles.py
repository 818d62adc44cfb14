"""Profiles: file validation with clear errors, selection by number or name."""
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from voiceagent.dialog.profiles import DEFAULT_PROFILE, ProfileError, load_profiles
from voiceagent.dialog.tools import ToolRegistry, builtin_tools_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "profiles.example.yaml"


def write(tmp_path, data, name="profiles.json"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_no_file_gives_the_builtin_default():
    ps = load_profiles(None)
    assert ps.for_number("123").name == "default" and ps.named("x").prompt == DEFAULT_PROFILE.prompt


def test_example_file_is_valid_and_uses_existing_tools():
    ps = load_profiles(EXAMPLE)
    reg = ToolRegistry()
    reg.load_dirs([builtin_tools_dir()])
    for p in ps.profiles:
        assert set(p.tools) <= set(reg.names())
    assert ps.for_number("+1 555-0100").name == "reception"
    assert ps.named("reminder").timezone == "Europe/Paris"
    assert ps.profiles[0].dtmf["0"].action == "transfer" and ps.profiles[0].transfer_destination("operator") == "1001"


def test_selection_by_number_and_name(tmp_path):
    ps = load_profiles(write(tmp_path, {"default": "b", "profiles": [
        {"name": "a", "numbers": ["+33 1 23 45 67 89"]},
        {"name": "b"},
        {"name": "c", "numbers": ["4420*"]},
        {"name": "d", "numbers": ["44207*"]},
    ]}))
    assert ps.select("+33123456789").name == "a"
    assert ps.select("442012345").name == "c"
    assert ps.select("442079999").name == "d"  # the longest prefix wins
    assert ps.select("999").name == "b"
    assert ps.select(None, name="c").name == "c"
    assert ps.select("+33123456789", name="c").name == "c"  # a named profile wins
    assert ps.select(None, name="nope").name == "b"
    assert ps.select(None).name == "b"


@pytest.mark.parametrize("data,expected", [
    ({"profiles": [{"name": "a", "timezone": "Europe/Pari"}]}, "profiles[0].timezone: unknown time zone 'Europe/Pari'"),
    ({"profiles": [{"name": "a", "greting": "hi"}]}, "profiles[0].greting: Extra inputs are not permitted"),
    ({"profiles": [{"name": "a"}, {"name": "a"}]}, "duplicate profile name 'a'"),
    ({"default": "zz", "profiles": [{"name": "a"}]}, "default: no profile named 'zz'"),
    ({"profiles": [{"name": "a", "dtmf": {"55": "hangup"}}]}, "profiles[0].dtmf: Value error, DTMF key '55'"),
    ({"profiles": [{"name": "a", "dtmf": {"1": "dance"}}]}, "profiles[0].dtmf.1.action"),
    ({"profiles": [{"name": "a", "dtmf": {"1": "say:"}}]}, "action 'say' needs a text"),
    ({"profiles": [{"name": "a", "prompt": "Hi {callr}"}]}, "profiles[0].prompt: unknown placeholder(s) {callr}"),
    ({"profiles": [{"name": "a", "numbers": ["1"]}, {"name": "b", "numbers": ["1"]}]}, "claimed by profiles 'a' and 'b'"),
    ({"profiles": []}, "profiles: List should have at least 1 item"),
    ({"profiles": [{"name": "a", "phrases": {"apology": 3}}]}, "profiles[0].phrases.apology: Input should be a valid string"),
])
def test_bad_file_errors_name_the_field(tmp_path, data, expected):
    path = write(tmp_path, data)
    with pytest.raises(ProfileError) as ei:
        load_profiles(path)
    assert str(path) in str(ei.value) and expected.replace("Value error, ", "") in str(ei.value)


def test_unparseable_files(tmp_path):
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profiles(write(tmp_path, "profiles: [name: a\n  - : :", "p.yaml"))
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profiles(write(tmp_path, "{nope", "p.json"))
    with pytest.raises(ProfileError, match="cannot read"):
        load_profiles(tmp_path / "missing.yaml")
    with pytest.raises(ProfileError, match="expected a mapping"):
        load_profiles(write(tmp_path, "42", "n.json"))


def test_load_from_settings(tmp_path):
    from voiceagent.config import load_settings

    path = write(tmp_path, [{"name": "only"}])
    assert load_profiles(load_settings(profiles_file=str(path))).default_profile.name == "only"
    assert load_profiles(load_settings(profiles_file="")).default_profile.name == "default"


def test_phrases_file_provides_defaults(tmp_path):
    phrases = write(tmp_path, {"goodbye": "Ciao!", "apology": "Oops."}, "phrases.json")
    ps = load_profiles(write(tmp_path, {"profiles": [{"name": "a", "phrases": {"apology": "Mine."}}]}), phrases)
    assert ps.profiles[0].phrases.goodbye == "Ciao!" and ps.profiles[0].phrases.apology == "Mine."
    assert load_profiles(None, phrases).default_profile.phrases.goodbye == "Ciao!"


def test_prompt_rendering_keeps_other_braces(tmp_path):
    ps = load_profiles(write(tmp_path, [{"name": "a", "timezone": "Asia/Tokyo",
                                         "prompt": "Now {local_time} {date} ({timezone}) for {caller}; JSON like {\"k\": 1}"}]))
    text = ps.profiles[0].render_prompt(datetime(2024, 12, 31, 15, 0, tzinfo=timezone.utc), "+8190")
    assert text == 'Now 12:00 AM January 1, 2025 (Asia/Tokyo) for +8190; JSON like {"k": 1}'


def test_the_prompt_says_what_the_enabled_tools_can_do_and_nothing_else():
    from voiceagent.dialog.conversation import Conversation
    from voiceagent.dialog.llm import LlmClient
    from voiceagent.dialog.profiles import Profile
    from voiceagent.dialog.tools import ToolContext

    reg = ToolRegistry()
    reg.load_dirs([builtin_tools_dir()])

    def conv(**profile):
        p = Profile(name="p", **profile)
        return Conversation(p, LlmClient("http://127.0.0.1:9/v1", "x"), reg, ToolContext(profile=p))

    plain = conv()  # the default tools, no transfer targets: a transfer cannot work on this line
    prompt = plain.system_prompt()
    assert "tell the current date, time and weekday" in prompt and "end the call" in prompt
    assert "put the caller through" not in prompt and "transfer_call" not in plain.tool_names
    assert "cannot do it" in prompt and "never make up facts" in prompt.lower()
    with_desk = conv(transfer_targets={"desk": "1001"})
    assert "transfer_call" in with_desk.tool_names and "put the caller through" in with_desk.system_prompt()
    mute = conv(tools=[])
    assert "you have no tools" in mute.system_prompt() and not mute.tool_names
