"""aws-masker subscriber: consume the plugin's monitoring events from Redis Pub/Sub.

``settings`` (one typed settings object from env and flags), ``events`` (parse a message),
``ratelimit`` (the per-second log limit), ``stats`` (counters), ``health`` (connection state and the
/health verdict), ``reconnect`` (backoff and error phrases), ``logs`` (structlog per environment),
``metrics`` (Prometheus collector), ``web`` (the aiohttp endpoint), ``subscriber`` (the class that owns
the connection, the loop and the shutdown) and ``cli`` (``aws-masker subscriber``).
"""

from .settings import Settings, SettingsError, load_settings
from .subscriber import Subscriber

__all__ = ["Settings", "SettingsError", "Subscriber", "load_settings"]
