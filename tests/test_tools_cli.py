"""`voiceagent config` prints each loaded plugin's own settings as a section, secrets masked;
`voiceagent tools list` shows what TOOLS_DISABLED disables."""
from click.testing import CliRunner

from voiceagent.cli import main

PLUGIN = '''
from pydantic import Field, SecretStr

from voiceagent.dialog.tool_support import ToolSettings
from voiceagent.dialog.tools import tool


class TempestSettings(ToolSettings):
    title = "tempest: the weather service"
    tempest_url: str = Field(default="https://weather.example", description="Where the forecasts come from.")
    tempest_api_key: SecretStr = Field(default=SecretStr(""), description="The service's key.")


@tool("tempest", settings=TempestSettings)
def tempest(args, ctx):
    """The weather."""
    return ctx.settings.tempest_url
'''


def test_config_prints_each_plugin_s_settings_section_masked(tmp_path):
    (tmp_path / "tempest.py").write_text(PLUGIN)
    out = CliRunner().invoke(main, ["config"], env={"TOOLS_DIRS": str(tmp_path), "TEMPEST_API_KEY": "s3cret-42",
                                                    "TEMPEST_URL": "https://user:pw@forecast.example/v1"})
    assert out.exit_code == 0, out.output
    section = out.output.split("# === tempest: the weather service ===\n", 1)[1]
    assert section.startswith("TEMPEST_URL=https://***@forecast.example/v1\n    # Where the forecasts come from.\n"
                              "TEMPEST_API_KEY=***\n    # The service's key.\n"), section
    assert "s3cret-42" not in out.output and "pw@" not in out.output


def test_a_bad_plugin_setting_is_printed_as_a_problem(tmp_path):
    (tmp_path / "tempest.py").write_text(PLUGIN.replace('tempest_url: str', 'tempest_url: int'))
    out = CliRunner().invoke(main, ["config"], env={"TOOLS_DIRS": str(tmp_path), "TEMPEST_URL": "x"})
    assert out.exit_code == 0, out.output
    assert "# tool plugin problem: tool tempest skipped: invalid configuration: TEMPEST_URL:" in out.output


def test_tools_list_shows_disabled_tools(tmp_path):
    (tmp_path / "tempest.py").write_text(PLUGIN)
    out = CliRunner().invoke(main, ["tools", "list"], env={"TOOLS_DIRS": str(tmp_path), "TOOLS_DISABLED": "tempest"})
    assert out.exit_code == 0, out.output
    assert out.output.startswith("tempest\tdisabled\t")
