"""``make run``: the whole system on this machine, with a demo tenant, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx

from crm_shared import devstack
from crm_shared.provision import provision_database, provision_vhost

DEMO_TENANT_ID = "00000000-0000-4000-8000-00000000d3e0"
DEMO_CUSTOMERS = [
    ("Ada Lovelace", "ada@example.com"),
    ("Grace Hopper", "grace@example.com"),
    ("Katherine Johnson", "katherine@example.com"),
]
REGISTER = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }"
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


async def seed_demo_customers(stack: devstack.Stack, token: str) -> None:
    """Register the demo customers through the gateway, like a front end would."""
    for name, email in DEMO_CUSTOMERS:
        result = await devstack.graphql(
            stack, REGISTER, {"input": {"name": name, "email": email}}, token=token
        )
        if result.get("errors"):
            print(f"demo customer {name!r} not registered: {result['errors']}", file=sys.stderr)


def main() -> None:
    stack = devstack.Stack()
    asyncio.run(
        provision_database(
            "postgresql://postgres@127.0.0.1:5432/postgres", stack.database, passwords={}
        )
    )
    asyncio.run(provision_vhost("amqp://guest:guest@127.0.0.1:5672", stack.vhost))
    devstack.migrate(stack)
    first_run = ensure_demo_tenant(stack)
    processes = devstack.start(stack)
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
            asyncio.run(seed_demo_customers(stack, token))
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
