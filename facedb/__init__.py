"""facedb: a face-search database service (enroll, identify, verify) over gRPC."""

__version__ = "0.1.0"
