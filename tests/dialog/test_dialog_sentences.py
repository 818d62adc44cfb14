"""Sentence splitting (streaming) and normalisation for speech: tables."""
import pytest

from voiceagent.dialog.sentences import (SentenceSplitter, normalize_for_speech, number_to_words, ordinal_to_words,
                                         split_sentences)


def stream_split(text, step):
    sp = SentenceSplitter()
    out = []
    for i in range(0, len(text), step):
        out += sp.feed(text[i:i + step])
    return out + sp.flush()


@pytest.mark.parametrize("text,expected", [
    ("Hello there. How are you?", ["Hello there.", "How are you?"]),
    ("Dr. Smith will see you. Mrs. Jones too.", ["Dr. Smith will see you.", "Mrs. Jones too."]),
    ("It is 3.5 degrees. Cold!", ["It is 3.5 degrees.", "Cold!"]),
    ("Meet at 10:30. Bring a pen.", ["Meet at 10:30.", "Bring a pen."]),
    ("I think... maybe not. Well... Okay.", ["I think... maybe not.", "Well...", "Okay."]),
    ("Wait… What?! Really?", ["Wait…", "What?!", "Really?"]),
    ("J. R. R. Tolkien wrote it.", ["J. R. R. Tolkien wrote it."]),
    ("Open at 9 a.m. on weekdays. Closed at 5 p.m. Come by!", ["Open at 9 a.m. on weekdays.", "Closed at 5 p.m.", "Come by!"]),
    ("Apples, pears etc. are fine. Thanks.", ["Apples, pears etc. are fine.", "Thanks."]),
    ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
    ("Visit example.com today. Bye.", ["Visit example.com today.", "Bye."]),
    ("First line\nSecond line", ["First line", "Second line"]),
    ("No end punctuation", ["No end punctuation"]),
    ("... . !", []),
])
@pytest.mark.parametrize("step", [1, 4, 1000])
def test_splitting(text, expected, step):
    assert stream_split(text, step) == expected


def test_sentence_is_emitted_as_soon_as_it_ends():
    sp = SentenceSplitter()
    assert sp.feed("Hello there.") == []  # "there." might be "there.com": wait for the next character
    assert sp.feed(" How") == ["Hello there."]
    assert sp.feed(" are you?") == []
    assert sp.flush() == ["How are you?"]


def test_long_clause_is_cut_at_a_comma_then_at_a_space():
    clause = "this part has no full stop but it keeps going on and on for a while, "
    out = stream_split(clause * 3 + "end", 5)
    assert out[0] == clause.strip() and all(len(s) <= 180 for s in out)
    words = " ".join(["word"] * 100)
    out = stream_split(words, 7)
    assert len(out) >= 3 and all(len(s) <= 180 for s in out) and " ".join(out) == words


@pytest.mark.parametrize("n,words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (21, "twenty-one"), (100, "one hundred"), (115, "one hundred fifteen"),
    (1000, "one thousand"), (2024, "two thousand twenty-four"), (1000001, "one million one"), (-4, "minus four"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize("n,words", [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"), (20, "twentieth"),
                                     (21, "twenty-first"), (100, "one hundredth"), (103, "one hundred third")])
def test_ordinals(n, words):
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize("text,speech", [
    ("It's 10:30 now.", "It's ten thirty now."),
    ("Meet at 3:05 PM.", "Meet at three oh five p.m."),
    ("Open 9 am to 5pm.", "Open nine a.m. to five p.m."),
    ("It is 7:47 AM on Wednesday, December 1, 2026 (UTC).",
     "It is seven forty-seven a.m. on Wednesday, December first, twenty twenty-six U T C."),
    ("See you Dec. 3rd at 9 AM.", "See you December third at nine a.m."),
    ("That is 10:15 in America/New_York (EST).", "That is ten fifteen in New York E S T."),
    ("Room 12 on May 5.", "Room twelve on May fifth."),
    ("At 10:00 or 14:00.", "At ten o'clock or fourteen hundred."),
    ("It costs $5.20 or $1.", "It costs five dollars and twenty cents or one dollar."),
    ("Only $0.99!", "Only ninety-nine cents!"),
    ("€3 and £2.50", "three euros and two pounds and fifty pence"),
    ("$2.5 million", "two point five million dollars"),
    ("About 15% or 3.5%.", "About fifteen percent or three point five percent."),
    ("It's 20°C, 68°F.", "It's twenty degrees Celsius, sixty-eight degrees Fahrenheit."),
    ("5 km at 50 km/h, then 1 km.", "five kilometers at fifty kilometers per hour, then one kilometer."),
    ("Tom & Jerry + friends", "Tom and Jerry plus friends"),
    ("Room #5 is 3x4.", "Room number five is three by four."),
    ("It's -5 outside.", "It's minus five outside."),
    ("In 1999 and 2024.", "In nineteen ninety-nine and twenty twenty-four."),
    ("In 1905.", "In nineteen oh five."),
    ("1,234 people", "one thousand two hundred thirty-four people"),
    ("Pi is 3.14", "Pi is three point one four"),
    ("The 21st and 2nd.", "The twenty-first and second."),
    ("Call +1 555-123-4567.", "Call plus one, five five five, one two three, four five six seven."),
    ("Dial 555-1234 now", "Dial five five five, one two three four now"),
    ("**Bold** and *italic* and `code`", "Bold and italic and code"),
    ("# Title\n- one\n- two", "Title one two"),
    ("See [the docs](https://x.org/a) or https://www.example.com/path?x=1.", "See the docs or example dot com."),
    ("Mail bob@example.org.", "Mail bob at example dot org."),
    ("Great job 😀👍🏽!", "Great job!"),
    ("yes/no", "yes or no"),
])
def test_normalize_for_speech(text, speech):
    assert normalize_for_speech(text) == speech


def test_split_sentences_helper():
    assert split_sentences("A b. C d!") == ["A b.", "C d!"]


def test_the_first_clause_of_a_reply_is_cut_early_at_a_comma():
    text = "The current time is 9:39 AM on Tuesday, December 1, 2026, in UTC. Later ones, like this, stay whole."
    early, whole = SentenceSplitter(first_soft_limit=30), SentenceSplitter()
    got_early, got_whole = [], []
    for word in text.split(" "):
        got_early += early.feed(word + " ")
        got_whole += whole.feed(word + " ")
    got_early += early.flush()
    got_whole += whole.flush()
    assert got_early[0] == "The current time is 9:39 AM on Tuesday,"
    assert got_early[-1] == "Later ones, like this, stay whole."
    assert got_whole[0] == "The current time is 9:39 AM on Tuesday, December 1, 2026, in UTC."
    assert not any(p.endswith(("1,", "2026,")) for p in got_early), got_early  # never inside a date
