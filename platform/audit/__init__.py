"""The audit log: every change, sign-in and refusal, append-only."""
