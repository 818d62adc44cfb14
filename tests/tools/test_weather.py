"""The weather tool against a local stand-in of the Tempest REST API: the spoken report, the numbers kept,
and a clear sentence (never a crash, never a failed call) when the station is not set up or misbehaves."""
import pytest


def test_the_sample_observation_is_one_natural_sentence_in_the_profile_zone(weather_registry, tempest, ctx):
    res = weather_registry.run("get_weather", {}, ctx)
    assert res.ok, res.value
    assert res.speak == ("At Storm Lake, as of 9:30 pm, it's 44 degrees with foggy conditions. The wind is calm. "
                         "Yesterday saw half an inch of rain.")
    data = res.value["data"]
    assert data["temperature"] == 44 and data["wind"] == 1 and data["humidity"] == 98 and data["foggy"]
    assert data["rain_yesterday_mm"] == 12.7 and data["observed_at"] == "2024-11-12T21:30:00-06:00"
    assert tempest.requests == [{"path": "/swd/rest/observations/station/118512", "query": {"token": ["tok-123"]}}]


def test_wind_gusts_rain_today_lightning_and_uv_are_said_when_notable(weather_registry, tempest, ctx):
    tempest.obs(air_temperature=29.0, feels_like=33.5, dew_point=18.0, relative_humidity=52, wind_avg=4.5,
                wind_direction=225, wind_gust=11.2, precip=0.2, precip_accum_local_day=6.5,
                precip_accum_local_yesterday=0.0, lightning_strike_count_last_1hr=3,
                lightning_strike_last_distance=8, uv=8.6)
    res = weather_registry.run("get_weather", {}, ctx)
    assert res.speak == (
        "At Storm Lake, as of 9:30 pm, it's 84 degrees and raining, feeling like 92. "
        "Wind from the southwest at 10 miles per hour, gusting to 25. "
        "So far today there's been a quarter of an inch of rain. "
        "There's been lightning: 3 strikes in the last hour nearby, the latest about 5 miles away. "
        "The UV index is very high, at 9: protect your skin if you go out.")
    assert res.value["data"]["lightning_distance"] == 5 and res.value["data"]["gust"] == 25


def test_a_steady_breeze_without_gusts_has_no_gust_and_dry_days_no_rain(weather_registry, tempest, ctx):
    tempest.obs(relative_humidity=60, dew_point=-1.0, wind_avg=3.0, wind_gust=4.0, wind_direction=0,
                precip_accum_local_yesterday=0.05)
    res = weather_registry.run("get_weather", {}, ctx)
    assert res.speak == "At Storm Lake, as of 9:30 pm, it's 44 degrees. Wind from the north at 7 miles per hour."


def test_metric_units_and_a_location_name_override(make_registry, tempest, ctx):
    reg = make_registry(tempest_station_id="118512", tempest_token="t", tempest_base_url=tempest.base_url,
                        tempest_units="metric", tempest_location_name="the marina")
    tempest.obs(wind_avg=5.0, wind_gust=6.0, wind_direction=90, precip_accum_local_yesterday=3.26)
    res = reg.run("get_weather", {}, ctx)
    assert res.speak == ("At the marina, as of 9:30 pm, it's 7 degrees. "  # a 5 m/s wind: no fog
                         "Wind from the east at 18 kilometers per hour. Yesterday saw 3.3 millimeters of rain.")


def test_an_old_reading_says_its_day(weather_registry, tempest, ctx):
    tempest.obs(timestamp=1731468600 - 86400)
    assert "as of 9:30 pm on Monday," in weather_registry.run("get_weather", {}, ctx).speak


@pytest.mark.parametrize("env", [{}, {"tempest_station_id": "118512"}, {"tempest_token": "t"}])
def test_unconfigured_is_said_plainly_and_nothing_is_asked(make_registry, tempest, ctx, env):
    reg = make_registry(tempest_base_url=tempest.base_url, **env)
    res = reg.run("get_weather", {}, ctx)
    assert res.ok and "not set up" in res.speak and "TEMPEST_STATION_ID" in res.value["data"]["error"]
    assert tempest.requests == []


def test_a_bad_setting_is_a_load_problem_naming_the_variable(make_registry):
    reg = make_registry(tempest_station_id="station-one")
    assert "get_weather" not in reg and any("TEMPEST_STATION_ID" in e for e in reg.errors), reg.errors
    reg = make_registry(tempest_base_url="ftp://example.com")
    assert "get_weather" not in reg and any("TEMPEST_BASE_URL" in e for e in reg.errors), reg.errors


@pytest.mark.parametrize("status, words", [(500, "can't reach"), (502, "can't reach"), (401, "refused my access")])
def test_an_error_status_is_a_clear_sentence(weather_registry, tempest, ctx, status, words):
    tempest.status = status
    res = weather_registry.run("get_weather", {}, ctx)
    assert res.ok and words in res.speak and str(status) in res.value["data"]["error"]


@pytest.mark.parametrize("raw", [b"<html>502 Bad Gateway</html>", b'{"obs": "nope"}', b'{"obs": [{"air_temperature":'
                                 b' "warm", "timestamp": 1}]}', b"[]", b'{"obs": [{"timestamp": -5}]}'])
def test_junk_is_a_clear_sentence(weather_registry, tempest, ctx, raw):
    tempest.raw = raw
    res = weather_registry.run("get_weather", {}, ctx)
    assert res.ok and "can't reach the weather station" in res.speak, res.value
    assert "not an observation" in res.value["data"]["error"]


def test_no_current_readings(weather_registry, tempest, ctx):
    tempest.body = dict(tempest.body, obs=[])
    assert "no current readings" in weather_registry.run("get_weather", {}, ctx).speak
    tempest.body = dict(tempest.body, status={"status_code": 2, "status_message": "NOT FOUND"})
    res = weather_registry.run("get_weather", {}, ctx)
    assert "can't reach" in res.speak and "NOT FOUND" in res.value["data"]["error"]


def test_a_station_that_never_answers_times_out_into_a_sentence(make_registry, tempest, ctx):
    reg = make_registry(tempest_station_id="1", tempest_token="t", tempest_base_url=tempest.base_url,
                        tempest_timeout="0.3")
    tempest.hang = True
    res = reg.run("get_weather", {}, ctx)
    assert res.ok and "can't reach the weather station" in res.speak
    assert "did not answer in time" in res.value["data"]["error"]


def test_nothing_listening_is_a_clear_sentence(make_registry, ctx):
    reg = make_registry(tempest_station_id="1", tempest_token="t", tempest_base_url="http://127.0.0.1:9/swd/rest")
    res = reg.run("get_weather", {}, ctx)
    assert res.ok and "can't reach" in res.speak and "cannot reach" in res.value["data"]["error"]
