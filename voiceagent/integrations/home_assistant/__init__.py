"""Home Assistant for the phone: settings, the REST client, entity matching and spoken answers, used by the
built-in plugin ``tools/home_assistant.py`` (Assist delegation and direct control with confirmation)."""
