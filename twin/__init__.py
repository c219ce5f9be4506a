"""Point-cloud surveys against the design model: registration, deviation, as-built status, progress; and the CLI."""
