"""greenswitch's insides are known in one module only, checked against the installed version."""
import re
from importlib.metadata import version
from pathlib import Path

from voiceagent.telephony import esl_greenswitch

TELEPHONY = Path(esl_greenswitch.__file__).parent

#: greenswitch attributes with no public way in (see esl_greenswitch's docstring).
PRIVATE = re.compile(r"\._run\b|_auth_request_event|_receive_events_greenlet|sock_file|_commands_sent|_esl_event_queue")


def test_the_adapter_was_checked_against_the_installed_greenswitch():
    assert version("greenswitch") == esl_greenswitch.CHECKED_GREENSWITCH_VERSION, (
        "greenswitch changed: re-check esl_greenswitch.py against its InboundESL.connect, then bump the version there")


def test_no_other_module_touches_greenswitch_private_attributes():
    offenders = [p.name for p in sorted(TELEPHONY.glob("esl*.py"))  # the ESL client's modules
                 if p.name != "esl_greenswitch.py" and PRIVATE.search(p.read_text())]
    assert not offenders, offenders


def test_the_names_imported_from_telephony_esl_are_still_there():
    from voiceagent.telephony import esl

    for name in ("EslConnection", "EslError", "EslNotConnected", "EslDisconnected", "EslTimeout", "EslAuthError",
                 "CommandError", "Reply", "DEFAULT_EVENTS", "FORK_SUBCLASSES", "subscription_command"):
        assert hasattr(esl, name), name
