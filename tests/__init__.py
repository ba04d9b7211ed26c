"""The tests: unit/ mirrors the code; the other folders start real servers and processes."""
