"""What the tests share and import: builders, the stack launcher's wrapper, dashboard helpers.

Fixtures live in the conftest.py files; everything a test imports lives here.
"""
