"""SSE framing, usage extraction and the usage-chunk test."""

from __future__ import annotations

from gptoss_operator.router.sse import (
    EventFramer,
    Usage,
    event_data,
    inspect_event,
    usage_from_object,
    wants_usage_injection,
    with_usage_requested,
)

CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
)
USAGE = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}\n\n'
)
COMPLETED = (
    b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":'
    b'{"input_tokens":3,"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4}}}}\n\n'
)


class TestFramer:
    def test_whole_events_pass_as_they_are(self) -> None:
        f = EventFramer()
        assert f.feed(CHUNK + USAGE + b"data: [DONE]\n\n") == [CHUNK, USAGE, b"data: [DONE]\n\n"]
        assert f.flush() == b""

    def test_split_events_are_joined_byte_for_byte(self) -> None:
        stream = CHUNK + COMPLETED + b"data: [DONE]\n\n"
        f = EventFramer()
        out: list[bytes] = []
        for i in range(0, len(stream), 7):
            out += f.feed(stream[i : i + 7])
        assert b"".join(out) == stream
        assert out == [CHUNK, COMPLETED, b"data: [DONE]\n\n"]

    def test_crlf_separators_and_unterminated_tail(self) -> None:
        f = EventFramer()
        assert f.feed(b"data: a\r\n\r\ndata: b\n\ndata: c") == [b"data: a\r\n\r\n", b"data: b\n\n"]
        assert f.flush() == b"data: c"


class TestUsage:
    def test_chat_usage_chunk(self) -> None:
        seen = inspect_event(USAGE)
        assert seen.is_usage_chunk
        assert seen.usage == Usage(5, 7, 0)

    def test_ordinary_chunks_are_not_parsed(self) -> None:
        assert inspect_event(CHUNK).usage is None
        assert not inspect_event(b'data: {"usage":null,"choices":[]}\n\n').is_usage_chunk

    def test_responses_completed_event_is_counted_not_dropped(self) -> None:
        seen = inspect_event(COMPLETED)
        assert seen.usage == Usage(3, 9, 4)
        assert not seen.is_usage_chunk
        assert event_data(COMPLETED) is not None

    def test_usage_from_bodies(self) -> None:
        chat = {
            "usage": {
                "prompt_tokens": 1,
                "completion_tokens": 2,
                "completion_tokens_details": {"reasoning_tokens": 1},
            }
        }
        assert usage_from_object(chat) == Usage(1, 2, 1)
        assert usage_from_object({"usage": None}) is None
        assert usage_from_object([1]) is None
        assert usage_from_object({"usage": {"prompt_tokens": True}}) == Usage(0, 0, 0)

    def test_injection_only_for_streams_without_usage(self) -> None:
        assert wants_usage_injection({"stream": True})
        assert wants_usage_injection({"stream": True, "stream_options": {"include_usage": False}})
        assert not wants_usage_injection({"stream": True, "stream_options": {"include_usage": True}})
        assert not wants_usage_injection({"stream": False})
        body = {"stream": True, "stream_options": {"continuous_usage_stats": True}}
        assert with_usage_requested(body)["stream_options"] == {
            "continuous_usage_stats": True,
            "include_usage": True,
        }
        assert body["stream_options"] == {"continuous_usage_stats": True}, "input untouched"
