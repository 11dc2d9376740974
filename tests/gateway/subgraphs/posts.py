"""The "posts" subgraph: Post, Person.posts, a Media interface, a union across subgraphs."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tests.gateway.subgraphs.data import (
    ACCOUNTS,
    PEOPLE,
    POSTS,
    POSTS_BY_AUTHOR,
    RATING_FAILS_FOR,
    PostRow,
)


@strawberry.federation.interface
class Media:
    url: str


@strawberry.federation.type
class Image(Media):
    width: int


@strawberry.federation.type
class Video(Media):
    seconds: int


@strawberry.federation.type(keys=["id"])
class Person:
    id: strawberry.ID
    # Provided by Post.author only; otherwise the people subgraph resolves it.
    name: str = strawberry.federation.field(external=True)

    @strawberry.field
    def posts(self, limit: int | None = None) -> list[Post] | None:
        rows = POSTS_BY_AUTHOR.get(str(self.id), [])
        return [Post.from_row(row) for row in rows[:limit]]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Person:
        row = PEOPLE.get(str(id))
        return cls(id=id, name=row.name if row else "")


def _author(root: Post) -> Person:
    return Person(id=strawberry.ID(root.author_id), name=PEOPLE[root.author_id].name)


@strawberry.federation.type(keys=["id"])
class Post:
    id: strawberry.ID
    title: str
    author_id: strawberry.Private[str]
    reviewer_id: strawberry.Private[str | None]
    media_kind: strawberry.Private[str | None]

    author: Person = strawberry.federation.field(resolver=_author, provides=["name"])

    @strawberry.field
    def reviewer(self) -> Person | None:
        if self.reviewer_id is None:
            return None
        return Person(id=strawberry.ID(self.reviewer_id), name=PEOPLE[self.reviewer_id].name)

    @strawberry.field
    def media(self) -> Media | None:
        if self.media_kind == "image":
            return Image(url=f"https://img.example/{self.id}.png", width=640)
        if self.media_kind == "video":
            return Video(url=f"https://vid.example/{self.id}.mp4", seconds=42)
        return None

    @strawberry.field
    def rating(self) -> int:
        if self.id == RATING_FAILS_FOR:
            raise ValueError(f"rating unavailable for {self.id}")
        return len(self.title)

    @classmethod
    def from_row(cls, row: PostRow) -> Post:
        return cls(
            id=strawberry.ID(row.id),
            title=row.title,
            author_id=row.author_id,
            reviewer_id=row.reviewer_id,
            media_kind=row.media_kind,
        )

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Post | None:
        row = POSTS.get(str(id))
        return cls.from_row(row) if row else None


@strawberry.federation.type(keys=["tenant handle"])
class Account:
    tenant: str
    handle: str

    @strawberry.field
    def post_count(self) -> int:
        return len(POSTS_BY_AUTHOR.get(ACCOUNTS[(self.tenant, self.handle)], []))

    @classmethod
    def resolve_reference(cls, tenant: str, handle: str) -> Account:
        return cls(tenant=tenant, handle=handle)


@strawberry.type
class PostEdge:
    cursor: str
    node: Post


@strawberry.type
class PostConnection:
    edges: list[PostEdge]
    total_count: int


SearchResult = Annotated[Post | Person, strawberry.union("SearchResult")]


@strawberry.type
class Query:
    @strawberry.field
    def post(self, id: strawberry.ID) -> Post | None:
        row = POSTS.get(str(id))
        return Post.from_row(row) if row else None

    @strawberry.field
    def latest_posts(self, first: int = 10) -> list[Post]:
        return [Post.from_row(row) for row in list(POSTS.values())[:first]]

    @strawberry.field
    def posts_connection(self, first: int | None = None, last: int | None = None) -> PostConnection:
        rows = list(POSTS.values())
        if first is not None:
            rows = rows[:first]
        elif last is not None:
            rows = rows[-last:] if last else []
        edges = [PostEdge(cursor=row.id, node=Post.from_row(row)) for row in rows]
        return PostConnection(edges=edges, total_count=len(POSTS))

    @strawberry.field
    def search(self, term: str) -> list[SearchResult]:
        results: list[Post | Person] = []
        for row in POSTS.values():
            if term in row.title:
                results.append(Post.from_row(row))
                author = PEOPLE[row.author_id]
                results.append(Person(id=strawberry.ID(author.id), name=author.name))
            if len(results) >= 6:
                break
        return results

    @strawberry.field
    def gallery(self) -> list[Media]:
        return [
            Image(url="https://img.example/a.png", width=10),
            Video(url="https://vid.example/b.mp4", seconds=3),
        ]


schema = strawberry.federation.Schema(query=Query, types=[Person, Post, Image, Video, Account])
