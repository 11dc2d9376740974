"""Social customer care: brand accounts, cases, replies, SLAs."""
