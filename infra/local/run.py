"""``make run``: the whole system on this machine, with a demo tenant, until Ctrl-C.

More than one process of a service: ``WORKERS_REWARDS=2 make run`` (``WORKERS_<SERVICE>``
for identity, engagement, rewards), or ``infra/local/run.py --workers rewards=2``. The first
process of a service serves its usual port (the gateway's subgraph); the others run beside it
on ports of their own, as competing consumers with a relay and the periodic jobs each
(``crm_shared.devstack.start(..., replicas=...)``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm_shared import devstack
from crm_shared.provision import provision_database, provision_vhost
from infra.local import vader_corpus

DEMO_TENANT_ID = "00000000-0000-4000-8000-00000000d3e0"
DEMO_CUSTOMERS = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Katherine Johnson", "katherine@example.com"),
]
REGISTER = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }"
# The demo brand's X account, the demo customers' X accounts, and authors nobody knows yet.
DEMO_BRAND = {"channel": "x", "platformUserId": "demo-brand", "handle": "demobrand"}
DEMO_BRAND_AUTHOR = (DEMO_BRAND["platformUserId"], DEMO_BRAND["handle"], 48_000)
DEMO_ACCOUNTS = [
    ("demo-ada", "ada_l", 1_800),
    ("demo-grace", "amazing_grace", 250_000),
    ("demo-kj", "kj_orbits", 95),
]
UNKNOWN_AUTHORS = [
    (f"demo-fan-{i}", f"fan{i}", followers)
    for i, followers in enumerate((12, 40, 300, 5_000, 61, 20_000))
]
DEMO_TWEETS = 300
BRAND_REPLIES = (
    "Sorry to hear that! We've sent you a DM so we can sort it out.",
    "Thanks for telling us. Our team is looking into it right now.",
    "Good question! You'll find the details on our help page; happy to help further by DM.",
)
CREATE_BRAND = (
    "mutation($input: CreateBrandAccountInput!) { createBrandAccount(input: $input) { id } }"
)
RECORD_PROFILE = (
    "mutation($input: RecordSocialProfileInput!) { recordSocialProfile(input: $input) { id } }"
)
LINK_PROFILE = (
    "mutation($input: LinkSocialProfileInput!) { linkSocialProfile(input: $input) { id } }"
)
# The demo tenant's admin (development only: `make run` is a local playground).
DEMO_ADMIN = ("admin@demo.example", "demo-admin-password")


def ensure_demo_tenant(stack: devstack.Stack) -> bool:
    """Create the demo tenant on first run; True when it was created now."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "identity.tenants.cli",
            "ensure",
            "--slug",
            "demo",
            "--name",
            "Demo Brand",
            "--id",
            DEMO_TENANT_ID,
            "--admin-email",
            DEMO_ADMIN[0],
            "--admin-password",
            DEMO_ADMIN[1],
        ],
        cwd=devstack.REPO,
        env=stack.env("identity"),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[1] == "created"


def demo_admin_token(stack: devstack.Stack) -> str:
    """A token of the demo admin, from identity's token endpoint (staff login)."""
    response = httpx.post(
        stack.url("identity", "/oauth/token"),
        data={
            "grant_type": "password",
            "username": DEMO_ADMIN[0],
            "password": DEMO_ADMIN[1],
            "tenant": "demo",
        },
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def seed_demo_customers(stack: devstack.Stack, token: str) -> list[str]:
    """Register the demo customers through the gateway, like a front end would; their ids."""
    ids = []
    for name, email in DEMO_CUSTOMERS:
        result = await devstack.graphql(
            stack, REGISTER, {"input": {"name": name, "email": email}}, token=token
        )
        if result.get("errors"):
            print(f"demo customer {name!r} not registered: {result['errors']}", file=sys.stderr)
        else:
            ids.append(result["data"]["registerCustomer"]["id"])
    return ids


def demo_items(
    tweets: list[vader_corpus.Rated], *, now: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    """Normalized X items made of real rated tweets: posts, complaints, questions, the brand's
    replies to some of them, and shares of the brand's own post, over the last two days."""
    authors = DEMO_ACCOUNTS * 3 + UNKNOWN_AUTHORS  # the known customers speak more often
    brand_post_id = "demo-brand-post-1"
    items: list[dict[str, Any]] = [
        _item(
            brand_post_id,
            "post",
            DEMO_BRAND_AUTHOR,
            "Our spring collection is here!",
            now - timedelta(hours=50),
        )
    ]
    for tweet in rng.sample(tweets, min(DEMO_TWEETS, len(tweets))):
        author = rng.choice(authors)
        at = now - timedelta(minutes=rng.uniform(1, 48 * 60))
        if tweet.rating <= -1.0 and rng.random() < 0.7:
            kind = "complaint"
        elif "?" in tweet.text and rng.random() < 0.6:
            kind = "question"
        else:
            kind = rng.choice(("post", "post", "mention"))
        platform_id = f"demo-tweet-{tweet.id}"
        items.append(_item(platform_id, kind, author, tweet.text, at))
        if kind in ("complaint", "question") and rng.random() < 0.4:
            reply_at = at + timedelta(minutes=rng.uniform(5, 8 * 60))
            if reply_at < now:
                text = BRAND_REPLIES[2] if kind == "question" else rng.choice(BRAND_REPLIES[:2])
                reply = _item(f"{platform_id}-reply", "reply", DEMO_BRAND_AUTHOR, text, reply_at)
                items.append({**reply, "thread_id": platform_id, "parent_id": platform_id})
        elif kind == "post" and rng.random() < 0.05:
            share = _item(f"{platform_id}-share", "share", author, None, at)
            items.append({**share, "thread_id": brand_post_id, "parent_id": brand_post_id})
    return items


def _item(
    platform_id: str, kind: str, author: tuple[str, str, int], text: str | None, at: datetime
) -> dict[str, Any]:
    user_id, handle, followers = author
    return {
        "channel": "x",
        "platform_id": platform_id,
        "kind": kind,
        "thread_id": platform_id,
        "author": {"platform_user_id": user_id, "handle": handle, "followers": followers},
        "text": text,
        "created_at": at.isoformat(),
    }


async def seed_demo_conversations(
    stack: devstack.Stack, token: str, customer_ids: list[str]
) -> None:
    """The demo brand's X account, its customers' accounts, and a few hundred real tweets
    (VADER's human-rated corpus) ingested as conversations, so that cases exist."""
    try:
        tweets = await asyncio.to_thread(vader_corpus.tweets)
    except vader_corpus.CorpusUnavailable as exc:
        print(f"no demo conversations (VADER's corpus is unavailable: {exc})", file=sys.stderr)
        return
    created = await devstack.graphql(stack, CREATE_BRAND, {"input": DEMO_BRAND}, token=token)
    if created.get("errors"):
        print(f"demo brand account not created: {created['errors']}", file=sys.stderr)
    for customer_id, (user_id, handle, followers) in zip(customer_ids, DEMO_ACCOUNTS, strict=False):
        profile = await devstack.graphql(
            stack,
            RECORD_PROFILE,
            {
                "input": {
                    "channel": "X",
                    "platformUserId": user_id,
                    "handle": handle,
                    "followers": followers,
                }
            },
            token=token,
        )
        if profile.get("errors"):
            print(f"demo profile {handle!r} not recorded: {profile['errors']}", file=sys.stderr)
            continue
        linked = await devstack.graphql(
            stack,
            LINK_PROFILE,
            {
                "input": {
                    "profileId": profile["data"]["recordSocialProfile"]["id"],
                    "customerId": customer_id,
                    "evidence": "STAFF_DECISION",
                }
            },
            token=token,
        )
        if linked.get("errors"):
            print(f"demo profile {handle!r} not linked: {linked['errors']}", file=sys.stderr)
    items = demo_items(tweets, now=datetime.now(UTC), rng=random.Random(2014))
    accepted = 0
    async with httpx.AsyncClient(timeout=60) as client:
        for start in range(0, len(items), 100):
            response = await client.post(
                stack.url("engagement", "/ingest/normalized"),
                json=items[start : start + 100],
                headers={"authorization": f"Bearer {token}"},
            )
            if response.status_code != 200:
                print(
                    f"demo ingestion refused: {response.status_code} {response.text[:300]}",
                    file=sys.stderr,
                )
                return
            accepted += int(response.json()["accepted"])
    print(f"demo: {accepted} interactions from VADER's rated tweets (Hutto & Gilbert, ICWSM 2014)")


def workers(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> dict[str, int]:
    """How many processes of each subgraph to run: ``WORKERS_<SERVICE>`` in the environment,
    overridden by ``--workers <service>=<n>`` (repeatable)."""
    environ = dict(os.environ) if environ is None else environ
    counts = {
        service: int(environ[f"WORKERS_{service.upper()}"])
        for service in devstack.SUBGRAPHS
        if environ.get(f"WORKERS_{service.upper()}", "").strip()
    }
    parser = argparse.ArgumentParser(description="Run the whole system locally.")
    parser.add_argument(
        "--workers",
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="run N processes of a subgraph service (e.g. rewards=2)",
    )
    for item in parser.parse_args(argv).workers:
        service, _, count = item.partition("=")
        if service not in devstack.SUBGRAPHS or not count.isdigit():
            parser.error(f"--workers {item}: expected <identity|engagement|rewards>=<n>")
        counts[service] = int(count)
    for service, count in counts.items():
        if count < 1:
            parser.error(f"{service}: at least one process")
    return counts


def main() -> None:
    replicas = workers()
    stack = devstack.Stack()
    asyncio.run(
        provision_database(
            "postgresql://postgres@127.0.0.1:5432/postgres", stack.database, passwords={}
        )
    )
    asyncio.run(provision_vhost("amqp://guest:guest@127.0.0.1:5672", stack.vhost))
    devstack.migrate(stack)
    first_run = ensure_demo_tenant(stack)
    processes = devstack.start(stack, replicas=replicas)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        devstack.wait_ready(stack, tuple(processes))
        token = demo_admin_token(stack)
        if first_run:
            customer_ids = asyncio.run(seed_demo_customers(stack, token))
            try:
                asyncio.run(seed_demo_conversations(stack, token, customer_ids))
            except httpx.HTTPError as exc:  # the demo still runs, only without conversations
                print(f"no demo conversations: {exc}", file=sys.stderr)
        print(
            "\nSocial CRM is running.\n"
            f"  GraphiQL:    {stack.url('gateway', '/graphql')}\n"
            f"  demo admin:  {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]} (tenant slug: demo)\n"
            f"  a token (15 minutes; send it as  Authorization: Bearer <token>):\n{token}\n"
            "  a new one:   curl -s -d grant_type=password -d tenant=demo"
            f" -d username={DEMO_ADMIN[0]} -d password={DEMO_ADMIN[1]}"
            f" {stack.url('identity', '/oauth/token')}\n"
            "  subgraphs:   "
            + ", ".join(stack.url(s, "/graphql") for s in devstack.SUBGRAPHS)
            + "\n  processes:   "
            + ", ".join(f"{name} (:{stack.ports[name]})" for name in processes)
            + "\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with {process.returncode}; stopping", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping...", file=sys.stderr)
        devstack.stop(processes)


if __name__ == "__main__":
    main()
