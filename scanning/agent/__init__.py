"""The reference scan agent: runs on the scanner host and talks to Bureau's
agent API only (no database access), so it can run on another machine."""
