"""status layer of the gatekeeper."""
