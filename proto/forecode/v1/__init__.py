"""forecode.v1: the generated messages (``forecode_pb2``) and services (``forecode_pb2_grpc``).

Import them as ``from proto.forecode.v1 import forecode_pb2 as pb, forecode_pb2_grpc as rpc``.
"""
