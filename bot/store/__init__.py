"""Persistence: the ports the core depends on (`bot.store.ports`) and the SQLite store (`bot.store.sqlite`).

Nothing is imported here, so that the workflow can depend on the ports without loading
aiosqlite: import `bot.store.sqlite` where the store is built.
"""
