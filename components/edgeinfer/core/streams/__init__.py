"""Many cameras, one model: the ``sources:`` list, the stream multiplexer and per-stream accounting."""
