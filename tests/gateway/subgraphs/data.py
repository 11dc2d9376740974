"""Deterministic data shared by the test subgraphs (each serves its own slice of it)."""

from __future__ import annotations

from dataclasses import dataclass

PEOPLE_COUNT = 60
TENANT = "acme"


@dataclass(frozen=True)
class PersonRow:
    id: str
    name: str
    email: str | None
    age: int
    level: str


@dataclass(frozen=True)
class PostRow:
    id: str
    author_id: str
    title: str
    reviewer_id: str | None
    media_kind: str | None  # "image", "video" or None


def _person(number: int) -> PersonRow:
    return PersonRow(
        id=f"p{number}",
        name=f"Person {number}",
        # Every 7th person has no email: nulls in data.
        email=None if number % 7 == 0 else f"person{number}@example.com",
        age=18 + number % 50,
        level=("gold", "silver", "bronze")[number % 3],
    )


PEOPLE: dict[str, PersonRow] = {p.id: p for p in (_person(n) for n in range(1, PEOPLE_COUNT + 1))}


def _posts_of(number: int) -> list[PostRow]:
    posts = []
    for index in range(1, number % 3 + 2):
        reviewer = None if (number + index) % 4 == 0 else f"p{(number + index) % PEOPLE_COUNT + 1}"
        kind = ("image", "video", None)[(number + index) % 3]
        posts.append(
            PostRow(
                f"post-{number}-{index}", f"p{number}", f"Post {index} by {number}", reviewer, kind
            )
        )
    return posts


POSTS: dict[str, PostRow] = {
    post.id: post for n in range(1, PEOPLE_COUNT + 1) for post in _posts_of(n)
}
POSTS_BY_AUTHOR: dict[str, list[PostRow]] = {}
for _post in POSTS.values():
    POSTS_BY_AUTHOR.setdefault(_post.author_id, []).append(_post)

# (tenant, handle) -> owner id: the compound-key entity.
ACCOUNTS: dict[tuple[str, str], str] = {(TENANT, f"handle{n}"): f"p{n}" for n in range(1, 11)}

# Fields that fail on purpose, to test error mapping and null propagation.
BADGES_FAIL_FOR = "p3"
RATING_FAILS_FOR = "post-2-1"


def points_of(person_id: str) -> int:
    """The loyalty points of a person."""
    return int(person_id[1:]) * 10


def tier_for(age: int) -> str:
    """The tier derived from the age (the field that @requires age)."""
    return "senior" if age >= 40 else "junior"
