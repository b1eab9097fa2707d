"""Customer emails: templates rendered in a sandbox (`render`), messages built and sent
over SMTP or into files (`mail`). Imports no service: the notifier
(`services/notifications.py`) gathers what a template is rendered with."""
