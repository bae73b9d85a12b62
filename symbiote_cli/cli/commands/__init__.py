"""One module per command group (as pipx does); ``cli.app`` composes them.

A command parses its options, asks the wiring for services, calls a flow and prints.
"""
