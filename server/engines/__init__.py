"""Model backends behind one small protocol (see `base`); one module per engine."""
