"""
CoAP over DTLS 1.2: one UDP socket, one pyOpenSSL memory-BIO connection per
client, below the CoAP engine (L{gateway.dtls.transport.DTLSTransport}
feeds C{MessageLayer.receive(peer, datagram)} with L{gateway.dtls.session}
peers carrying their identity).  It imports only the engine's peer and
parameter modules, never the dialects or the service layer: PSK keys and
registered certificates come through L{gateway.dtls.credentials}.
"""
