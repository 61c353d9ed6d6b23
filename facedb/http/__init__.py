"""HTTP/JSON transport: the facedb.v1 RPCs as resource-style routes (FastAPI on uvicorn),
served by `facedb serve --http-port` beside gRPC, calling the engine directly."""
