"""Generated from protos/tuner/v1 by `make generate`; never edited by hand."""
