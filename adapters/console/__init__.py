"""The console adapter: messages from files and the command line, effects printed."""
