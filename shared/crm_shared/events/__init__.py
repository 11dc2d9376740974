"""Events: the CloudEvents envelope, the transactional outbox and its relay, consumers."""

from crm_shared.events.envelope import Envelope, Event, routing_key_for
from crm_shared.events.outbox import record_event, record_events

__all__ = ["Envelope", "Event", "record_event", "record_events", "routing_key_for"]
