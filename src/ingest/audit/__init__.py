"""The audit trail: who changed what, in which tenant, under which request."""
