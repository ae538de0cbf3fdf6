"""
Protobuf schemas: a proto3 compiler on the protobuf runtime (no protoc), for
profile payload schemas and the gateway's fixed message files.

A leaf package: it imports the protobuf runtime and nothing of ours but
L{gateway.domain}.
"""
