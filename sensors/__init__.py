"""Site sensors: device registry, ingestion, attendance, dust, cranes and hoists, warnings."""
