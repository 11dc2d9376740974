"""Standard Webhooks signing and the retry schedule, as pure functions (no I/O)."""

from __future__ import annotations

import random
import re
import time
import uuid

from standardwebhooks.webhooks import Webhook

from identity.partners.broker import BrokerAccess, permissions
from identity.partners.signing import headers, new_secret, retry_delay


def test_a_signed_request_verifies_with_the_standard_library() -> None:
    secret = new_secret()
    body = b'{"id":"e1","type":"identity.customer.registered.v1"}'
    sent = headers([secret], msg_id="e1", timestamp=int(time.time()), body=body)
    assert Webhook(secret).verify(body, sent) == {
        "id": "e1",
        "type": "identity.customer.registered.v1",
    }


def test_two_secrets_give_two_signatures_each_valid_alone() -> None:
    old, new = new_secret(), new_secret()
    body = b"{}"
    sent = headers([new, old], msg_id="e2", timestamp=int(time.time()), body=body)
    assert sent["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        Webhook(secret).verify(body, sent)


def test_secrets_are_fresh_and_prefixed() -> None:
    assert len({new_secret() for _ in range(50)}) == 50
    assert all(s.startswith("whsec_") for s in (new_secret(), new_secret()))


def test_retries_back_off_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, base=1.0, cap=60.0, rng=rng) for n in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped, but not all equal


def test_a_partner_user_may_bind_only_its_chosen_types_and_publish_only_its_own_facts() -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    access = BrokerAccess(user="partner-x", queue="partner.x")
    chosen = ["identity.customer.registered.v1", "rewards.points.credited.v1"]
    granted = permissions(
        access,
        exchange="crm.events",
        partner_exchange="crm.partners",
        tenant_id=tenant,
        event_types=chosen,
    )
    topics = {t["exchange"]: t for t in granted["topics"]}
    assert set(topics) == {"crm.events", "crm.partners"}
    topic = topics["crm.partners"]["read"]
    for allowed in chosen:
        assert re.search(topic, f"{allowed}.{tenant}")
    for refused in (
        f"identity.customer.registered.v1.{other}",
        f"identity.customer.updated.v1.{tenant}",
        f"identityXcustomer.registered.v1.{tenant}",
        f"#.{tenant}",
        "#",
        "identity.customer.registered.v1.*",
    ):
        assert not re.search(topic, refused), refused
    # It binds to the partner exchange (what passed the consent check), never to crm.events.
    assert re.search(granted["vhost"]["read"], "crm.partners")
    assert not re.search(granted["vhost"]["read"], "crm.events")
    assert not re.search(topics["crm.events"]["read"], f"identity.customer.registered.v1.{tenant}")
    # It may write to crm.events, where the topic permission admits only its tenant's facts,
    # and not to the partner exchange (it cannot feed other partners).
    assert re.search(granted["vhost"]["write"], "crm.events")
    assert not re.search(granted["vhost"]["write"], "crm.partners")
    assert not re.search(granted["vhost"]["write"], "amq.default")
    assert topics["crm.partners"]["write"] == "^$"
    facts = topics["crm.events"]["write"]
    assert re.search(facts, f"partner.purchase.reported.v1.{tenant}")
    for refused in (
        f"partner.purchase.reported.v1.{other}",
        f"rewards.points.credited.v1.{tenant}",
        "partner.purchase.reported.v1.#",
        f"partner.purchase.reported.v1.{tenant}.x",
    ):
        assert not re.search(facts, refused), refused
    assert not re.search(granted["vhost"]["read"], "identity.events")
    assert granted["vhost"]["configure"] == "^$"
