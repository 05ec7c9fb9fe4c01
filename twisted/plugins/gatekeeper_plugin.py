"""Makes ``twistd gatekeeper`` available (no __init__.py in twisted/plugins)."""

from twisted.application.service import ServiceMaker

gatekeeper = ServiceMaker("gatekeeper", "gatekeeper.tap", "An H.323 gatekeeper", "gatekeeper")
