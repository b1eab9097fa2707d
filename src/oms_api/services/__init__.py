"""Use cases: load, apply domain rules, persist, record events. Services never commit."""
