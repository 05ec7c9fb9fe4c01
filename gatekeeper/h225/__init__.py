"""H.225.0 wire codec: RAS, H323-UserInformation, Q.931 and TPKT. No Twisted, no state."""
