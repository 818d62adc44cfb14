"""The message template reads plain JSON only: no code, no attributes, capped lengths."""
import pytest

from voiceagent.webhooks.sources import SourceError, parse_sources
from voiceagent.webhooks.template import VALUE_MAX, MissingField, Template, TemplateError


def test_paths_read_keys_and_indexes_with_an_optional_default():
    t = Template('{{ alerts.1.labels.x }} / {{ n }} / {{ f }} / {{ gone | default("none") }} / {{ l }}')
    assert t.render({"alerts": [{}, {"labels": {"x": "b"}}], "n": 3, "f": 44.23943737541908, "l": ["a", 1]}) == \
        "b / 3 / 44.2394 / none / a, 1"


def test_a_path_never_reaches_python_attributes():
    with pytest.raises(MissingField):
        Template("{{ a.__class__.__mro__ }}").render({"a": "x"})
    with pytest.raises(MissingField):
        Template("{{ a.keys }}").render({"a": {"b": 1}})


@pytest.mark.parametrize("text", ["{{ a.upper() }}", "{{ a }}{{", "{{ a | lower }}",
                                  "{{ 1 + 1 }}", "{% for x in y %}"])
def test_anything_but_a_path_is_refused_when_the_template_is_loaded(text):
    if "{%" in text:  # not a placeholder: just text
        assert Template(text).render({}) == text
        return
    with pytest.raises(TemplateError):
        Template(text)


def test_a_missing_field_or_an_object_names_the_path():
    with pytest.raises(MissingField) as exc:
        Template("{{ alert.labels.team }}").render({"alert": {"labels": {}}})
    assert exc.value.path == "alert.labels.team"
    with pytest.raises(MissingField, match="object"):
        Template("{{ alert }}").render({"alert": {"labels": {}}})


def test_values_and_the_text_are_capped():
    out = Template("{{ a }}{{ a }}{{ a }}{{ a }}{{ a }}{{ a }}{{ a }}{{ a }}").render({"a": "x" * 10_000})
    assert len(out) == 2000
    assert len(Template("{{ a }}").render({"a": "y" * 10_000})) == VALUE_MAX


def test_a_bad_source_is_refused_naming_it():
    good = {"kind": "grafana", "auth": {"type": "bearer", "secret": "s" * 20}, "to": ["+15551230001"]}
    assert parse_sources({"sources": {"ok": good}})["ok"].to == ["+15551230001"]
    for bad, word in (({**good, "to": []}, "to"), ({**good, "auth": {"type": "bearer", "secret": "short"}}, "16"),
                      ({**good, "message": "{{ a.b() }}"}, "message"), ({**good, "to": ["call me"]}, "to"),
                      ({**good, "kind": "email"}, "kind")):
        with pytest.raises(SourceError, match=word):
            parse_sources({"sources": {"bad": bad}})
