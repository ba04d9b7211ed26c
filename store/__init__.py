"""All MongoDB access: the job store, its documents and the state machine it enforces."""
