"""ras layer of the gatekeeper."""
