"""
The twistd plugin: C{twistd -n coap-gateway}. Keep it thin; the options and
C{makeService} live in L{gateway.tap}, loaded only when the plugin is used.
"""

from twisted.application.service import ServiceMaker

coapGateway = ServiceMaker(
    "coap-gateway", "gateway.tap", "CoAP device gateway", "coap-gateway"
)
