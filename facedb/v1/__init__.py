"""Generated protobuf and gRPC stubs for `facedb.v1` (`make proto`; never edit by hand)."""
