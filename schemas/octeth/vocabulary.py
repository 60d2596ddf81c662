"""The Octeth words every other module shares: the hit kind, event types, flags and the header.

The bottom of the `schemas.octeth` package: it imports nothing, so the parser, the event mapper,
the gateway and the pipeline can all read these names without importing each other.
"""

from __future__ import annotations

SOURCE = "octeth"  # the hit kind and the event source
MINTED_UUID_HEADER = "x-hitstream-minted-uuid"  # set by the gateway when the client sent none

# Event types: `page_view` for its three spellings, `identify` and `conversion` matched exactly.
PAGE_VIEW = "page_view"
PAGE_VIEW_NAMES = frozenset({"page_view", "pageView", "pageview"})
IDENTIFY = "identify"
CONVERSION = "conversion"

REDACTED = "[email]"  # what an email address in a property or dimension becomes
WRONG_KIND = "wrong_kind"  # rejection reason: not an `octeth` hit (routing bug upstream)

# Flags: the event is kept, `Event.flags` says what was odd or notable.
SILENT = "silent"  # isSilent: stored and counted, never published to `triggers`
IDENTIFY_FLAG = "identify"  # the event type is identify
EMAIL_PRESENT = "email_present"  # a valid email was sent: an identity link to record (HMAC'd)
EMAIL_REDACTED = "email_redacted"
UUID_MINTED = "uuid_minted"  # the visitor id is the gateway's, not the client's
DUPLICATE_PARAMETER = "duplicate_parameter"
BAD_ID = "bad_id"
BAD_UUID = "bad_uuid"
BAD_PROPERTIES = "bad_properties"
BAD_CURRENCY = "bad_currency"
BAD_QUANTITY = "bad_quantity"
NEGATIVE_VALUE = "negative_value"
VALUE_ROUNDED = "value_rounded"
INVALID_UTF8 = "invalid_utf8"  # the user agent held bytes that are not UTF-8 (kept with U+FFFD)
