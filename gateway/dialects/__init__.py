"""Device-API dialects: CoAP resource trees over the service layer (see L{gateway.dialect})."""
