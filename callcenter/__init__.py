"""The `callcenter` command: serve the switch, manage the database and users."""
