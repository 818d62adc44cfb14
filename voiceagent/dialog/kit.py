"""``DialogKit``: what a worker builds once (the chat model, tools, profiles) and each call's
:class:`~.conversation.Conversation` is made from.

Without a configured LLM (``LLM_BASE_URL`` empty or ``rule-based``) the chat model is the in-process
rule-based responder (:mod:`.rule_based`); the runtime never reaches into ``voiceagent.testing``.
"""
from __future__ import annotations

import logging
from typing import Callable, List, Optional

from ..config import RULE_BASED
from .conversation import Conversation
from .llm_types import ChatModel
from .rule_based import RuleBasedLlm
from .tool_reload import ToolSet
from .tools import Clock, ToolContext, ToolRegistry

log = logging.getLogger(__name__)


class DialogKit:
    """What a worker builds once (LLM client, tools, profiles) and uses per call."""

    def __init__(self, llm: ChatModel, tools: ToolRegistry, profiles, *, history_turns: int = 12,
                 max_tool_rounds: int = 3, max_failures: int = 3,
                 demo_server: Optional[RuleBasedLlm] = None, settings=None) -> None:
        self.llm = llm
        # the current registry, swapped whole by a reload (dialog/tool_reload.py); ``tools`` reads it
        self.live = ToolSet(tools, settings)
        self.profiles = profiles
        self.history_turns = history_turns
        self.max_tool_rounds = max_tool_rounds
        self.max_failures = max_failures
        # the rule-based responder when no LLM is configured (then also ``llm``); None with a real LLM
        self.demo_server = demo_server
        # called with each call's new ToolContext to add what the process offers its tools (the voice
        # worker's scheduler: calls/voice_services.py); a failing hook is logged, the call goes on
        self.context_hooks: List[Callable[[ToolContext], None]] = []

    @classmethod
    def from_settings(cls, s) -> "DialogKit":
        """Raises ProfileError for a bad profiles file (at start-up, not mid-call)."""
        from .llm import LlmClient
        from .profiles import profiles_from_settings

        profiles = profiles_from_settings(s)
        tools = ToolRegistry.from_settings(s)
        demo = None
        llm: ChatModel
        if s.llm_base_url in ("", RULE_BASED):
            demo = llm = RuleBasedLlm()
            if s.llm_base_url == RULE_BASED:
                log.info("LLM_BASE_URL=%s: the rule-based responder answers (in process)", RULE_BASED)
            else:
                log.warning("LLM_BASE_URL is not set: using the rule-based demo responder (in process)")
        else:
            llm = LlmClient.from_settings(s)
        return cls(llm, tools, profiles, history_turns=s.history_turns, max_tool_rounds=s.llm_max_tool_rounds,
                   max_failures=s.llm_max_failures, demo_server=demo, settings=s)

    @property
    def tools(self) -> ToolRegistry:
        """The registry as of now (a reload replaces it; a conversation follows at its next turn)."""
        return self.live.current

    def close(self) -> None:
        """Release what the kit started (nothing today: the rule-based responder runs in process)."""
        if self.demo_server is not None:
            self.demo_server.stop()

    def conversation(self, *, call_id: str = "", direction: str = "inbound", caller: str = "", callee: str = "",
                     profile_name: Optional[str] = None, clock: Optional[Clock] = None, on_hangup=None,
                     on_transfer=None, instructions: str = "", opening: Optional[str] = None,
                     on_say=None) -> Conversation:
        """``on_say(text)`` speaks a tool's ``ctx.say`` words into the call at once (the voice dialog)."""
        profile = self.profiles.select(callee if direction == "inbound" else None, profile_name)
        ctx = ToolContext(call_id=call_id, caller=caller, callee=callee, direction=direction,
                          timezone=profile.timezone, profile=profile, clock=clock or Clock(),
                          on_hangup=on_hangup, on_transfer=on_transfer, on_say=on_say)
        for hook in self.context_hooks:
            try:
                hook(ctx)
            except Exception:  # noqa: BLE001 - a tool without its port fails alone, the call does not
                log.exception("tool context hook %r failed", hook)
        return Conversation(profile, self.llm, self.tools, ctx, history_turns=self.history_turns,
                            max_tool_rounds=self.max_tool_rounds, max_failures=self.max_failures,
                            instructions=instructions, opening=opening, tool_source=self.live)
