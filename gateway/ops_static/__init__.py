"""The `/ops` dashboard's page, script and stylesheet (served by gateway/ops.py; no CDN)."""
