"""The `gridline` command line (`main`), one module per command group.
May import anything in `app`; nothing in `app` imports it.
"""
