"""The cross-case index kept in the store (SQLite or PostgreSQL): its rows, its catch-up
from the notification log, and each case's clock facts."""
