"""Tables in, findings out: each analysis is a pure function of the packet (and later leg and flow) tables."""
