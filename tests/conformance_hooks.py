"""schemathesis hooks of the conformance run (loaded through SCHEMATHESIS_HOOKS by tests/test_conformance.py).

A tus PATCH body is `application/offset+octet-stream`: raw bytes, sent as schemathesis sends octet-stream.
"""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
