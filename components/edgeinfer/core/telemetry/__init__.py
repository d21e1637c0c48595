"""Telemetry: versioned events, a durable outbox, and transports behind one interface."""
