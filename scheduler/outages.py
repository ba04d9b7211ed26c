"""The errors that mean a dependency is down or stalled, not that the code is wrong.

Loops log them in one line and retry; RPCs answer UNAVAILABLE. Anything else is a bug and
is logged with its traceback.
"""

from __future__ import annotations

import nats.errors
from pymongo.errors import PyMongoError

DATABASE_OUTAGES: tuple[type[BaseException], ...] = (PyMongoError,)
NATS_OUTAGES: tuple[type[BaseException], ...] = (nats.errors.Error, TimeoutError, ConnectionError)
OUTAGES = DATABASE_OUTAGES + NATS_OUTAGES
