"""signalling layer of the gatekeeper."""
