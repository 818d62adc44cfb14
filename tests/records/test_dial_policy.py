"""The dial policy every placed call passes: E.164 validity, premium, international, extensions,
patterns, gateways and SIP URIs; refused before anything is queued, logged once with a masked number."""
import logging

import pytest

from voiceagent.config import DialSettings, load
from voiceagent.records.client import CallClient
from voiceagent.records.dial_policy import DialPolicy, DialRefused
from voiceagent.records.models import CallRequest


def policy(**overrides):
    return DialPolicy.from_settings(load(DialSettings, **overrides))


def refused(p, to, **req):
    with pytest.raises(DialRefused) as ei:
        p.check(CallRequest(to=to, **req))
    return ei.value


@pytest.mark.parametrize("to", ["+12025550123", "2025550123", "+15550100", "1000", "*97", "sip:bob@example.org"])
def test_the_default_policy_passes_domestic_numbers_extensions_and_sip_uris(to):
    policy().check(CallRequest(to=to))


def test_validation_refuses_numbers_that_are_not_valid_e164():
    strict = policy(dial_validate_e164=True)
    strict.check(CallRequest(to="+12025550123"))
    strict.check(CallRequest(to="2025550123"))  # national, read in DIAL_DEFAULT_REGION
    for bad in ("+15550100", "+1202555012", "5550100123"):
        err = refused(strict, bad)
        assert err.field == "to" and "not a valid phone number" in err.message
    strict.check(CallRequest(to="1000"))  # an extension is not a phone number: no validation


def test_premium_numbers_are_refused_unless_allowed():
    err = refused(policy(), "+19005551234")
    assert err.field == "to" and "premium" in err.message
    refused(policy(), "9005551234")  # the same number written nationally
    policy(dial_allow_premium=True).check(CallRequest(to="+19005551234"))


def test_numbers_outside_the_home_regions_are_international():
    for foreign in ("+442079460000", "+18765550123", "01144207946000", "+999123456789"):
        err = refused(policy(), foreign)  # London; Jamaica shares +1; via the US exit code; no such country
        assert err.field == "to" and "outside the home regions US" in err.message
    policy(dial_allow_international=True).check(CallRequest(to="+442079460000"))
    policy(dial_home_regions="US,GB").check(CallRequest(to="+442079460000"))
    gb = policy(dial_default_region="GB")
    gb.check(CallRequest(to="02079460000"))
    refused(gb, "+12025550123")


def test_extensions_up_to_the_configured_digits_pass_as_internal():
    p = policy(dial_extension_max_digits=4, dial_validate_e164=True)
    p.check(CallRequest(to="1000"))
    refused(p, "10000")  # five digits: read as a national number, which it is not
    refused(policy(), "1234*5678")  # feature codes are extensions, not phone numbers


def test_allowed_patterns_must_fullmatch():
    p = policy(dial_allowed_patterns=r"\+1202\d{7}, 10\d\d")
    p.check(CallRequest(to="+12025550123"))
    p.check(CallRequest(to="1001"))
    for other in ("+13125550123", "1100", "+120255501234"):
        assert refused(p, other).field == "to"


def test_allowed_gateways_bind_a_request_that_names_one():
    p = policy(dial_allowed_gateways="carrier1, carrier2")
    p.check(CallRequest(to="+12025550123", gateway="carrier2"))
    p.check(CallRequest(to="+12025550123"))  # no gateway: ORIGINATE_GATEWAY, the operator's own choice
    err = refused(p, "+12025550123", gateway="cheap-intl")
    assert err.field == "gateway" and "cheap-intl" in err.message


def test_sip_uris_can_be_turned_off():
    err = refused(policy(dial_allow_sip_uris=False), "sip:bob@example.org")
    assert err.field == "to" and "SIP" in err.message


def test_bad_settings_name_their_variable():
    from voiceagent.config import ConfigError

    for name, value in (("dial_default_region", "XX"), ("dial_home_regions", "US,ZZ"), ("dial_allowed_patterns", "(")):
        with pytest.raises(ConfigError, match=name.upper()):
            load(DialSettings, **{name: value})


def test_the_client_refuses_before_queueing_and_logs_the_masked_number_once(prefix, caplog):
    import redis

    client = CallClient.from_settings(_settings(prefix), client=redis.Redis())
    with caplog.at_level(logging.WARNING, logger="voiceagent.records.dial_policy"):
        with pytest.raises(DialRefused):
            client.place({"to": "+19005551234"})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "***1234" in lines[0] and "9005551234" not in lines[0]
    assert client.list(limit=10) == [] and client.records.expired_requests() == []
    assert client.get(client.place({"to": "+12025550123"})) is not None


def test_a_client_built_by_hand_is_permissive(client):
    client.place({"to": "+19005551234"})
    client.place({"to": "+442079460000"})


def _settings(prefix):
    from voiceagent.config import RecordsSettings, RedisSettings, load_sections

    return load_sections(RedisSettings, RecordsSettings, DialSettings, redis_prefix=prefix)
