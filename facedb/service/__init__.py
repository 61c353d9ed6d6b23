"""The gRPC service: server bootstrap, servicer, interceptors (auth, metrics), limits."""
