"""Pure parsers of rights signals: input text/bytes/headers (+ now) -> domain.Signal. No I/O."""
