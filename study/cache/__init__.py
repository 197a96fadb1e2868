"""Content keys: a result is reused only when everything that produced it is unchanged."""
