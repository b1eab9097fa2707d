"""Webhook delivery: endpoint targets (SSRF checks), signing, the dispatcher."""
