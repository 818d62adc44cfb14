"""POST /tools/reload over real HTTP and Redis: 202 with what changed, every API process follows the
generation, GET /tools shows TOOLS_DISABLED, execute refuses a disabled tool."""
from tests.api.test_tools_api import PLUGINS

TOOL = '''
from voiceagent.dialog.tools import tool

@tool("{name}")
def {name}(args, ctx):
    """A tool written by the test."""
    return "{value}"
'''


def test_reload_reports_the_changes_and_every_api_process_follows(start_api, tmp_path):
    (tmp_path / "a.py").write_text(TOOL.format(name="alpha", value="one"))
    one, two = start_api(tools_dirs=str(tmp_path)), start_api(tools_dirs=str(tmp_path))
    assert [t["name"] for t in two.http.get(two.url + "/tools").json()["tools"]] == ["alpha"]
    (tmp_path / "a.py").write_text(TOOL.format(name="alpha", value="two"))
    (tmp_path / "b.py").write_text(TOOL.format(name="beta", value="b"))
    (tmp_path / "c.py").write_text("raise RuntimeError('no config')\n")
    r = one.http.post(one.url + "/tools/reload")
    assert r.status_code == 202, r.text
    report = r.json()
    assert report["added"] == ["beta"] and report["changed"] == ["alpha"] and report["removed"] == []
    assert report["tools"] == ["alpha", "beta"] and report["generation"] >= 1
    assert any("c.py failed to load" in p and "no config" in p for p in report["problems"])
    listed = two.http.get(two.url + "/tools").json()  # the other process reloads when asked next
    assert [t["name"] for t in listed["tools"]] == ["alpha", "beta"] and listed["generation"] == report["generation"]
    assert any("c.py" in p for p in listed["problems"])
    ran = two.http.post(two.url + "/tools/alpha/execute", json={}).json()
    assert ran["ok"] and ran["result"] == "two"


def test_a_disabled_tool_is_listed_as_disabled_and_not_run(start_api):
    api = start_api(tools_dirs=PLUGINS, tools_disabled="crash_report")
    by_name = {t["name"]: t for t in api.http.get(api.url + "/tools").json()["tools"]}
    assert by_name["crash_report"]["disabled"] is True and by_name["crash_report"]["enabled"] is False
    assert by_name["weather_report"]["disabled"] is False and by_name["weather_report"]["enabled"] is True
    r = api.http.post(api.url + "/tools/crash_report/execute", json={})
    assert r.status_code == 409 and "disabled" in r.json()["error"]["message"]
    r = api.http.post(api.url + "/tools/crash_report/call", json={"to": "+15550100"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "name"
