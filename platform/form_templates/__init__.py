"""Form templates: start a new form from a shipped or a saved one (docs/forms.md)."""
