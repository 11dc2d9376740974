"""Rules: events become rewards (points or coupons), with caps, budgets, versions, dry runs."""
