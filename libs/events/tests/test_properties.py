"""Property tests: whatever values an event holds, its envelope's JSON form reads back to the same envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobQueued,
    LogLine,
    NeedResult,
    RunRejected,
    RunRequested,
    StepLogged,
    envelope_from_json,
    event_json,
    timestamp_text,
)
from hypothesis import given
from hypothesis import strategies as st

text = st.text(max_size=30)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
aware_times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones)

run_requested = st.builds(
    RunRequested,
    run_id=text,
    repository=text,
    ref=text,
    sha=text,
    event_name=text,
    payload=st.dictionaries(text, json_values, max_size=5),
    workdir=st.none() | text,
    workflows=st.lists(text, max_size=3),
    inputs=st.dictionaries(text, json_values, max_size=3),
    actor=text,
    delivery_id=st.none() | text,
)
job_queued = st.builds(
    JobQueued,
    run_id=text,
    job_id=text,
    attempt=st.integers(1, 1000),
    labels=st.lists(text, max_size=3),
    needs=st.dictionaries(
        text,
        st.builds(NeedResult, result=st.sampled_from(Conclusion), outputs=st.dictionaries(text, text, max_size=3)),
        max_size=3,
    ),
)
step_logged = st.builds(
    StepLogged,
    run_id=text,
    job_id=text,
    attempt=st.integers(1, 10),
    step_index=st.integers(0, 100),
    first_line=st.integers(1, 10**6),
    lines=st.lists(st.builds(LogLine, at=aware_times, text=st.text(max_size=80)), max_size=5),
)
run_rejected = st.builds(
    RunRejected, run_id=text, workflow=st.none() | text, index=st.integers(0, 9), count=st.integers(0, 9), reason=text
)
events: st.SearchStrategy[Event] = run_requested | job_queued | step_logged | run_rejected


@given(
    event=events,
    stream=text,
    event_id=text,
    occurred_at=aware_times,
    sequence=st.integers(0, 2**31),
    position=st.integers(0, 2**31),
)
def test_envelopes_of_random_events_round_trip(
    event: Event, stream: str, event_id: str, occurred_at: datetime, sequence: int, position: int
) -> None:
    envelope = Envelope.wrap(event, stream=stream, event_id=event_id or "id", occurred_at=occurred_at)
    envelope = envelope.placed(sequence, position)

    text_form = envelope.to_json()
    read = envelope_from_json(text_form)

    assert read == envelope
    assert read.event == event
    assert read.to_json() == text_form
    assert read.occurred_at.utcoffset() == timedelta(0)


@given(event=events, extra=st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), json_values, max_size=3))
def test_unknown_fields_survive_a_round_trip(event: Event, extra: dict[str, object]) -> None:
    widened = type(event).model_validate({**event.model_dump(mode="json"), **extra})
    envelope = Envelope.wrap(widened, stream="s", event_id="e", occurred_at=datetime(2024, 1, 1, tzinfo=UTC))

    read = envelope_from_json(envelope.to_json())

    assert read.event.model_extra == extra
    assert read.to_json() == envelope.to_json()


@given(at=st.datetimes(timezones=zones | st.just(timezone(timedelta(0)))))
def test_time_stamps_are_written_as_isoformat_writes_them_with_z_for_utc(at: datetime) -> None:
    assert timestamp_text(at) == at.isoformat().replace("+00:00", "Z")
    assert timestamp_text(at.astimezone(UTC)) == at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@given(event=events)
def test_an_events_json_is_what_pydantic_writes(event: Event) -> None:
    assert event_json(event) == event.model_dump_json()
