"""HTTP/JSON API and web console tests (a real `facedb serve` on loopback)."""
