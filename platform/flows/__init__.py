"""Flows in the platform: instances, tasks and the inbox over HTTP (docs/flows.md)."""
