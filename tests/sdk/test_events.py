"""Events: get_events from a stream position, paging, `now`; the long-poll server and the SDK's
event stream, which wakes on a change made after it started."""

import threading
import time

from box_sdk_gen import CreateFolderParent, GetEventsStreamType, GetEventStreamQueryParams, UpdateFileByIdParent
from conftest import data, upload


def now_position(client):
    return client.events.get_events(stream_position="now").next_stream_position


def events_since(client, position, limit=500):
    """Every event after `position`: (event_type, source id) pairs, oldest first."""
    out = []
    while True:
        page = client.events.get_events(stream_position=str(position), limit=limit, stream_type=GetEventsStreamType.ALL)
        out += [(e.event_type.value if hasattr(e.event_type, "value") else e.event_type, e.source.id) for e in page.entries]
        if not page.entries:
            return out
        position = page.next_stream_position


def test_get_events_records_each_change(client, folder):
    start = now_position(client)
    assert client.events.get_events(stream_position="now").entries == []
    sub = client.folders.create_folder("watched", CreateFolderParent(id=folder.id))
    f = upload(client, sub.id, "f.txt", data(40, 10))
    client.files.update_file_by_id(f.id, name="g.txt")
    client.files.update_file_by_id(f.id, parent=UpdateFileByIdParent(id=folder.id))
    client.files.delete_file_by_id(f.id)
    seen = events_since(client, start)
    mine = [t for t, source in seen if source in (sub.id, f.id)]
    assert mine == ["ITEM_CREATE", "ITEM_UPLOAD", "ITEM_RENAME", "ITEM_MOVE", "ITEM_TRASH"]
    # Paged one at a time, the same events come in the same order.
    assert events_since(client, start, limit=1) == seen


def test_long_poll_and_event_stream(client, folder):
    servers = client.events.get_events_with_long_polling()
    server = servers.entries[0]
    assert server.type == "realtime_server" and server.url.startswith("http")

    # From a position taken before the change, so that the change is seen whether it lands
    # before the stream's first read or during its long poll.
    stream = client.events.get_event_stream(query_params=GetEventStreamQueryParams(stream_position=str(now_position(client))))
    got = []

    def consume():
        for event in stream:
            got.append(event)
            if getattr(event.source, "name", None) == "made while streaming":
                stream.stop()
                return

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    time.sleep(1)  # most likely waiting on the long poll by now, which the change must wake
    client.folders.create_folder("made while streaming", CreateFolderParent(id=folder.id))
    worker.join(30)
    stream.stop()
    assert not worker.is_alive(), "the long poll woke up on the change"
    assert any(getattr(e.source, "name", None) == "made while streaming" for e in got)
