"""The Discord adapter: gateway messages in, effects and mod-channel posts out (discord.py 2.x).

Importing the package imports no discord.py: `capabilities` and `config` are light, for the
launcher; `client`, `sink`, `render`, `mapping` and `buttons` bring the library in.
"""
