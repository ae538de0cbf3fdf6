"""
The running gateway: its root service, the log-level filter, the data
directory's files, and L{compose.build_service}, which puts them together
(L{gateway.tap} calls it on the global reactor).
"""
