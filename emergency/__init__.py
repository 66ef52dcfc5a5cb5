"""Emergency calls: location objects (PIDF-LO) and the call-back window."""
