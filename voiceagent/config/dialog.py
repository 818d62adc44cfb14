"""The conversation's sections: the LLM and what it says, the tool plugins."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from .base import RULE_BASED, Section, check_url


class LlmSettings(Section):
    title = "llm: the language model, profiles and phrases (dialog/)"

    llm_base_url: str = Field(default="", description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; 'rule-based' = the built-in rule-based responder on purpose; empty = the same, with a warning that no LLM is configured.")
    llm_model: str = Field(default="local", description="Model name; a bare name means an OpenAI-compatible server at LLM_BASE_URL, 'provider/name' is passed to litellm as is.")
    llm_api_key: SecretStr = Field(default=SecretStr(""), description="API key for the LLM endpoint (empty for local servers).")
    llm_timeout: float = Field(default=20.0, gt=0, description="Seconds to wait for the LLM's response and between streamed chunks.")
    llm_temperature: float = Field(default=0.3, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(default=300, ge=1, description="Upper bound of one reply's length in tokens (phone answers are short).")
    llm_max_tool_rounds: int = Field(default=3, ge=0, le=20, description="Tool rounds per caller turn before the LLM must answer in words.")
    llm_warm_prefix: Literal["auto", "on", "off"] = Field(default="auto", description="Have the LLM server read the prompt prefix before it is needed (at start-up, and each call's while its greeting plays): 'auto' = only for a server on this machine (on a paid API it is a billed request).")
    llm_max_failures: int = Field(default=3, ge=1, description="Consecutive LLM failures after which the agent says goodbye and hangs up.")
    history_turns: int = Field(default=12, ge=1, description="Caller turns of conversation history sent to the LLM.")
    profiles_file: str = Field(default="", description="YAML or JSON file with the assistant profiles (empty = the built-in default profile).")
    phrases_file: str = Field(default="", description="YAML or JSON file with default phrases (thinking, apology, goodbye, transfer) for every profile.")

    @field_validator("llm_base_url")
    @classmethod
    def _llm_base_url(cls, v: str) -> str:
        if v == RULE_BASED:
            return v
        return check_url(v, ("http", "https"), "http://127.0.0.1:8000/v1")


class ToolsSettings(Section):
    title = "tools: the tool plugins the LLM may call (dialog/tools.py)"

    tool_timeout: float = Field(default=10.0, gt=0, description="Seconds a tool may run before it counts as failed.")
    tools_dirs: str = Field(default="", description="Comma-separated directories of tool plugins (*.py); empty = the built-in tools.")
    tools_disabled: str = Field(default="", description="Comma-separated tool names no call may use, whatever the profiles enable (GET /tools shows them disabled; POST /tools/{name}/execute refuses them).")
    tools_reload_check_seconds: float = Field(default=2.0, gt=0, le=300, description="How often a voice worker checks the tools generation in Redis (a reload is also published, which wakes it at once); after POST /tools/reload or `voiceagent tools reload` its registry is reloaded from TOOLS_DIRS.")


class TurnFlowSettings(Section):
    title = "turn flow: answers started early, backchannels, idle reprompts (calls/preemptive.py, calls/backchannel.py, calls/idle.py)"

    preemptive_llm: bool = Field(default=True, description="Start the LLM on the speculative transcript at the caller's first pause; the turn uses that stream when its final transcript is the same (normalised), else it is cancelled (the HTTP stream closed). Tools are only ever run once the turn is confirmed. Off = one LLM request per turn, started at the end of the turn.")
    backchannel_words: str = Field(default="mm,mmm,mm-hm,mm-hmm,mhm,mhmm,mmhm,mmhmm,hm,hmm,uh-huh,uh huh,yeah,yep,yes,okay,ok,right,sure,i see,got it,alright", description="Comma-separated phrases the caller says to show they are listening (calls/backchannel.py), the one list for both uses: alone in a turn they are not answered while the agent talks or after a statement (answered after a question); said over the agent, a paused agent resumes when they are all the caller said (or nothing Whisper keeps: a cough, noise; calls/barge_in.py).")
    idle_reprompt_s: float = Field(default=8.0, ge=0, le=300, description="Seconds of silence on both sides after which the agent says the profile's 'still there' phrase; 0 = never.")
    idle_reprompts: int = Field(default=2, ge=0, le=10, description="Idle reprompts said in a row without an answer before the agent says goodbye and hangs up.")
