"""Short-profile raw-dispatch fuzzing of the sentry (tools/fuzz.py) and regressions it found."""
