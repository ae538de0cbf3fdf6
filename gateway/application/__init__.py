"""
The running gateway: its root service, the listeners (bound before the
reactor runs, served once the store is open), the log-level filter, the
data directory's files, the stop-signal guard, one-line start-up errors,
and L{compose.build_service}, which puts them together (L{gateway.tap}
calls it on the global reactor).
"""
