"""Webhooks: signed (Standard Webhooks) event deliveries to tenant URLs, as durable jobs."""
