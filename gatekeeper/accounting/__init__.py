"""accounting layer of the gatekeeper."""
