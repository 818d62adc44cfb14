"""Chat-template markup that small local models leak into their text is never spoken."""
import pytest

from voiceagent.dialog.sentences import normalize_for_speech


@pytest.mark.parametrize("text,spoken", [
    ("<tools> </tools>", ""),
    ("<tool_call></tool_call>", ""),
    ("It is ten now.<|im_end|>", "It is ten now."),
    ("<tool_response>Sunny</tool_response> today.", "Sunny today."),
    ("Use 2 < 3 wisely.", "Use two three wisely."),
])
def test_template_markup_is_stripped(text, spoken):
    assert normalize_for_speech(text) == spoken
