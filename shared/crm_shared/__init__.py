"""crm_shared."""
