"""Community: polls, ideas, contests, and requests to reuse a fan's content."""
