"""Fixtures of the end-to-end tests: tenants made through identity's own command."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from crm_shared import devstack

REGISTER = """
mutation Register($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) { id name email }
}
"""

CUSTOMER_360 = """
query Customer($id: ID!) {
  customer(id: $id) { id name email rewards { balance } interactionCount }
}
"""


def make_tenant(stack: devstack.Stack) -> str:
    """A new tenant, created with identity's tenant command against the stack's database."""
    slug = f"e2e-{uuid.uuid4().hex[:10]}"
    out = subprocess.run(
        [sys.executable, "-m", "identity.tenants.cli", "ensure", "--slug", slug, "--name", slug],
        cwd=devstack.REPO,
        env=stack.env("identity"),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"tenant command failed:\n{out.stderr[-3000:]}"
    return out.stdout.split()[0]


@pytest.fixture(scope="session")
def tenant_id(stack: devstack.Stack) -> str:
    return make_tenant(stack)


@pytest.fixture(scope="session")
def other_tenant_id(stack: devstack.Stack) -> str:
    return make_tenant(stack)
