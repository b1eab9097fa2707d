"""Pure domain rules: no I/O, no SQLAlchemy, FastAPI or httpx imports."""
