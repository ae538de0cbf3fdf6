"""
Device-API dialects: CoAP resource trees over the device-services facade
(see L{gateway.dialect}).  L{gateway.dialects.toolkit} (resources,
authentication, observation) and L{gateway.dialects.jsonio} (JSON in and
out) hold what every dialect shares; L{gateway.dialects.failures} maps
service failures to CoAP answers.
"""
