"""The documented scope table is the one the code enforces."""

from __future__ import annotations

from pathlib import Path

from crm_shared.auth import CLIENT_SCOPES, CUSTOMER_PERMISSIONS, ROLE_PERMISSIONS, Permission

README = Path(__file__).resolve().parents[2] / "services" / "identity" / "README.md"
ROLES = ["admin", "marketer", "agent", "analyst"]


def _documented_rows() -> dict[str, list[str]]:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].startswith("`") and ":" in cells[0]:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_the_readme_scope_table_matches_the_code() -> None:
    expected = {
        p.value: [
            *("✓" if p in ROLE_PERMISSIONS[role] else "" for role in ROLES),
            "may" if p in CLIENT_SCOPES["frontend"] else "",
            "may" if p in CLIENT_SCOPES["partner"] else "",
            "own" if p in CUSTOMER_PERMISSIONS else "",
        ]
        for p in Permission
    }
    assert _documented_rows() == expected
