"""An H.323 gatekeeper on Twisted with a GnuGk-compatible status port."""

__version__ = "0.1.0.dev0"
