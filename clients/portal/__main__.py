"""Run the demo portal with Flask's development server: ``python -m clients.portal``."""

import os
import sys

from .app import ConfigError, create_app


def main() -> int:
    try:
        app = create_app()
        host = os.environ.get("PORTAL_HOST", "127.0.0.1")
        port_text = os.environ.get("PORTAL_PORT", "5001")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"PORTAL_PORT must be a port number, got {port_text!r}")
    except ConfigError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 2
    app.run(host=host, port=int(port_text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
