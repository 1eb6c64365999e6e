"""Schemathesis hooks for elevens: every generated write gets a fresh Idempotency-Key, so a
generated request is never answered as the repeat of an earlier one (which would hide the
server's answer to it), nor refused as a key reused for another request."""
import uuid

import schemathesis


@schemathesis.hook
def map_headers(ctx, headers):
    if headers is not None and "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return headers
