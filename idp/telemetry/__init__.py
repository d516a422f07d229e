"""What the provider tells operators about itself while it runs: log lines and metrics.

Below the services (they count and log through it), above nothing of the provider."""
