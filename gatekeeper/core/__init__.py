"""core layer of the gatekeeper."""
