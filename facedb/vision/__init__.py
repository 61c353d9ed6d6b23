"""Pure image → numbers: decoding, detection, alignment, embedding, gates. No SQL, no gRPC."""
