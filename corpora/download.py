"""Fetch corpus files over HTTP, politely, into the user's cache.

Gutenberg asks robots to identify themselves and go slowly; we send a user
agent, retry transient failures with backoff, and write each file atomically
so an interrupted download never leaves half a book in the cache.
"""

import hashlib
import time

from .errors import UserError

USER_AGENT = "ghostwriter/0.1 (writing assistant; one-time corpus download)"
RETRIES = 3


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(url: str, *, retries: int = RETRIES, backoff: float = 1.0, timeout: float = 60.0) -> bytes:
    """GET a URL, retrying server errors and network failures; 4xx fail at once."""
    import urllib.error  # here: http.client and email take a fifth of `assistant --help`'s start
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == retries:
                raise UserError(f"download failed: {url} answered HTTP {e.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            if attempt == retries:
                reason = getattr(e, "reason", e)
                raise UserError(
                    f"download failed: {url} ({reason}); set ASSISTANT_CORPORA to a local copy if you are offline"
                ) from None
        time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")
