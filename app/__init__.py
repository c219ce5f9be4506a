"""The application: the ``sitetwin`` command line, the demo, the workbench server.

It is the one layer that wires the library packages together; nothing below imports it.
"""
