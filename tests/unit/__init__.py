"""Fast tests of one module each, on real NATS and SecantusDB where they touch them."""
