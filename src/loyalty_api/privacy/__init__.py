"""Members' rights over the data the service holds about them (data-subject requests)."""
