"""Short-profile concurrency stress of the sentry (tools/stress.py)."""
