"""What the Markdown files claim and a test can check: the make targets they name exist, the
settings (environment variables) they name exist in the settings classes, the ``CRM_*``
variables they name are read somewhere, and relative links and #anchors resolve the way
GitHub renders them (heading slugs; no ``{#id}`` heading attributes, which GitHub shows as
text)."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

from crm_shared import devstack
from crm_shared.settings import ServiceSettings
from engagement.settings import EngagementSettings
from gateway.settings import GatewaySettings
from identity.settings import IdentitySettings
from rewards.settings import RewardsSettings

REPO = devstack.REPO
SETTINGS: dict[str, type[ServiceSettings]] = {
    "IDENTITY": IdentitySettings,
    "ENGAGEMENT": EngagementSettings,
    "REWARDS": RewardsSettings,
    "GATEWAY": GatewaySettings,
}
# Variables with a service's prefix that are not settings fields, and who reads them.
NOT_SETTINGS = {
    # crm_shared.provision: role passwords at provisioning.
    "IDENTITY_DB_PASSWORD",
    "ENGAGEMENT_DB_PASSWORD",
    "REWARDS_DB_PASSWORD",
}
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(REPO / p for p in listed if "node_modules" not in p and (REPO / p).exists())


def prose(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to
    hyphens (letters, digits, ``-`` and ``_`` kept)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors a rendered file has: heading slugs (repeats get -1, -2, ...), <a id>."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path):
        found |= set(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(found)


def test_headings_have_no_attribute_ids_that_github_would_show() -> None:
    found = [
        f"{path.relative_to(REPO)}: {line}"
        for path in markdown_files()
        for line in prose(path)
        if HEADING.match(line) and re.search(r"\{#[\w-]+\}\s*$", line)
    ]
    assert not found, "use the heading's own slug instead of {#id}:\n" + "\n".join(found)


def test_relative_links_and_anchors_resolve() -> None:
    broken = []
    for path in markdown_files():
        for line in prose(path):
            for target in (a or b for a, b in LINK.findall(line)):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(REPO)}: {target}"
                if not linked.exists():
                    broken.append(f"{where} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{where} (no such heading)")
    assert not broken, "\n".join(broken)


def make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.MULTILINE))


def test_the_make_targets_the_docs_name_exist() -> None:
    targets = make_targets()
    assert {"run", "test"} <= targets
    missing = [
        f"{path.relative_to(REPO)}: make {name}"
        for path in markdown_files()
        for line in prose(path)
        for code in re.findall(r"`([^`]+)`", line)
        for name in re.findall(r"(?:^|[\s;&|(])make ([a-z][\w-]*)", code)
        if name not in targets
    ]
    assert not missing, "\n".join(missing)


def test_the_settings_the_docs_name_exist() -> None:
    unknown = []
    for path in markdown_files():
        for line in prose(path):
            for prefix, name in re.findall(
                r"\b(IDENTITY|ENGAGEMENT|REWARDS|GATEWAY)_([A-Z][A-Z0-9_]*)\b", line
            ):
                variable = f"{prefix}_{name}"
                fields = SETTINGS[prefix].model_fields
                if name.lower() not in fields and variable not in NOT_SETTINGS:
                    unknown.append(f"{path.relative_to(REPO)}: {variable}")
    assert not unknown, "\n".join(unknown)


def test_the_crm_variables_the_docs_name_are_read_by_the_code() -> None:
    sources = "\n".join(
        p.read_text()
        for folder in ("shared", "services", "tests", "infra", "bench")
        for p in (REPO / folder).rglob("*.py")
        if "node_modules" not in p.parts
    )
    sources += (REPO / "Makefile").read_text()
    unknown = sorted(
        {
            f"{path.relative_to(REPO)}: {name}"
            for path in markdown_files()
            for line in prose(path)
            for name in re.findall(r"\b(CRM_[A-Z][A-Z0-9_]*)\b", line)
            if f'"{name}"' not in sources and f"{name}=" not in sources
        }
    )
    assert not unknown, "\n".join(unknown)
