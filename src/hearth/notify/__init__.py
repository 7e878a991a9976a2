"""Notifications: a notice through Apprise when a component stays down, and when it recovers."""
