"""Container health check: the HTTP port's /healthz answers (over TLS when it is on).

The check runs inside the container against loopback, so the certificate is not verified
(its name is the service's, not 127.0.0.1).
"""

import os
import ssl
import sys
import urllib.request

port = os.environ.get("FACEDB_HTTP_PORT", "8080")
tls = bool(os.environ.get("FACEDB_TLS_CERT"))
url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/healthz"
context = ssl._create_unverified_context() if tls else None
try:
    with urllib.request.urlopen(url, timeout=4, context=context) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(f"unhealthy: {error}", file=sys.stderr)
    sys.exit(1)
