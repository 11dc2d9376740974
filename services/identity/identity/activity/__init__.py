"""Activity: what other services know of a customer (value, balance, segment, tier, last
interaction), kept from their events so that customer lists can sort and filter on it."""
