"""Direct control against the stand-in: states read as sentences, services called with the right JSON, the
allowlist refusing, ambiguous names asked back, a forecast through return_response, failures spoken."""
import pytest


def _calls(ha):
    return [(r["path"], r["body"], sorted(r["query"])) for r in ha.service_calls()]


def test_turning_on_a_light_calls_the_service_and_says_so(direct, ha, ctx):
    res = direct.run("home_control", {"name": "porch light", "action": "turn_on"}, ctx)
    assert res.ok and res.speak == "Done, the Porch Light is on.", res.value
    assert _calls(ha) == [("/api/services/light/turn_on", {"entity_id": "light.porch"}, [])]
    data = res.value["data"]
    assert data["service"] == "light.turn_on" and data["state"] == "on"
    assert data["caller"] == "+15551230007" and data["call_id"] == "call-ha-1"


def test_values_go_into_the_service_data(direct, ha, ctx):
    res = direct.run("home_control", {"name": "thermostat", "action": "set_temperature", "value": 68}, ctx)
    assert res.speak == "Done, the Thermostat is set to 68 degrees."
    res = direct.run("home_control", {"name": "ceiling light", "area": "kitchen", "action": "set_brightness",
                                      "value": 40}, ctx)
    assert res.speak == "Done, the Ceiling Light is at 40 percent."
    assert _calls(ha) == [("/api/services/climate/set_temperature", {"entity_id": "climate.thermostat",
                                                                    "temperature": 68.0}, []),
                          ("/api/services/light/turn_on", {"entity_id": "light.kitchen_ceiling",
                                                           "brightness_pct": 40}, [])]


def test_a_missing_value_is_asked_for_not_invented(direct, ha, ctx):
    res = direct.run("home_control", {"name": "thermostat", "action": "set_temperature"}, ctx)
    assert res.ok and "Ask the caller for the value" in res.text and not ha.service_calls()


@pytest.mark.parametrize("name, area, said", [
    ("garage door", "", "The Garage Door is closed."),
    ("thermostat", "", "The Thermostat is set to heat at 66 degrees; it's 64.5 degrees now."),
    ("basement humidity", "", "The Basement Humidity is 61.2 percent."),
    ("leak sensor", "basement", "The Basement Leak is dry."),
    ("ceiling light", "kitchen", "The Ceiling Light is on at 50 percent."),
])
def test_states_are_read_as_sentences(direct, ha, ctx, name, area, said):
    res = direct.run("home_status", {"name": name, "area": area}, ctx)
    assert res.ok and res.speak == said, res.value
    assert any(r["path"].startswith("/api/states/") for r in ha.requests)
    assert not ha.service_calls()


def test_the_forecast_comes_from_a_service_that_returns_data(direct, ha, ctx):
    res = direct.run("home_status", {"name": "weather"}, ctx)
    assert res.speak == ("It's partly cloudy now, 71 degrees. Today: sunny, a high of 75 and a low of 58 degrees, "
                         "10 percent chance of rain."), res.value
    assert _calls(ha) == [("/api/services/weather/get_forecasts", {"entity_id": "weather.home", "type": "daily"},
                           ["return_response"])]


def test_an_ambiguous_name_is_asked_back_and_nothing_is_done(direct, ha, ctx):
    res = direct.run("home_control", {"name": "porch", "action": "turn_on"}, ctx)
    assert res.speak == "Which one do you mean: the Porch Light or the Porch Lantern?", res.value
    assert sorted(res.value["data"]["ambiguous"]) == ["light.porch", "light.porch_lantern"]
    res = direct.run("home_control", {"name": "ceiling light", "action": "turn_off"}, ctx)
    assert res.speak.startswith("Which one do you mean: the Ceiling Light or the Ceiling Light")
    assert not ha.service_calls()
    res = direct.run("home_control", {"name": "ceiling light", "area": "bedroom", "action": "turn_on"}, ctx)
    assert _calls(ha) == [("/api/services/light/turn_on", {"entity_id": "light.bedroom_ceiling"}, [])]


def test_an_unknown_name_is_said_plainly(direct, ha, ctx):
    res = direct.run("home_control", {"name": "hot tub", "action": "turn_on"}, ctx)
    assert res.speak == "Sorry, I couldn't find anything called hot tub." and not ha.service_calls()


def test_the_allowlist_refuses_other_entities_domains_and_services(make_registry, ha, ctx):
    reg = make_registry(ha_mode="direct", ha_allow_entities="light.porch", ha_allow_areas="garage")
    res = reg.run("home_control", {"name": "garden pump", "action": "turn_on"}, ctx)
    assert res.speak == "Sorry, I'm not allowed to turn on the Garden Pump by phone.", res.value
    res = reg.run("home_status", {"name": "front door"}, ctx)
    assert res.speak == "Sorry, I'm not allowed to tell you about the Front Door by phone."
    assert reg.run("home_control", {"name": "porch light", "action": "turn_on"}, ctx).speak.startswith("Done")
    assert reg.run("home_status", {"name": "garage door"}, ctx).speak == "The Garage Door is closed."  # by its area
    reg = make_registry(ha_mode="direct", ha_allow_domains="light", ha_allow_services="light.turn_off")
    res = reg.run("home_control", {"name": "porch light", "action": "turn_on"}, ctx)
    assert "not allowed" in res.speak and "allowlist" in res.text
    assert _calls(ha) == [("/api/services/light/turn_on", {"entity_id": "light.porch"}, [])]


def test_an_action_that_does_not_fit_the_device_is_not_sent(direct, ha, ctx):
    res = direct.run("home_control", {"name": "thermostat", "action": "unlock"}, ctx)
    assert "couldn't find" in res.speak and not ha.service_calls()


@pytest.mark.parametrize("env, hang, words, why", [
    ({"ha_token": "nope"}, False, "refused my access", "401"),
    ({"ha_timeout": 0.5}, True, "didn't answer in time", "no answer"),
    ({"ha_url": "http://127.0.0.1:9"}, False, "can't reach", "cannot reach"),
])
def test_401_timeout_and_unreachable_are_spoken(make_registry, ha, ctx, env, hang, words, why):
    reg = make_registry(ha_mode="direct", ha_allow_domains="light", **env)
    ha.hang = hang
    for tool, args in (("home_control", {"name": "porch light", "action": "turn_on"}),
                       ("home_status", {"name": "porch light"})):
        res = reg.run(tool, args, ctx)
        assert res.ok and words in res.speak and why in res.value["data"]["error"], res.value
