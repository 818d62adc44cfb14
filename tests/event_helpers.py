"""Reading a call's events back from the stream in tests."""
import uuid


def event_types(client, call_id):
    """The types of one call's events, read from the stream's start by a fresh consumer group, to the end."""
    group, got = f"t-{uuid.uuid4().hex[:6]}", []
    while batch := client.stream.read(group, "c", block_ms=1):
        got += [ev.type for _, ev in batch if ev.call_id == call_id]
        client.ack(group, *[entry_id for entry_id, _ in batch])
    return got
