"""The sample store: every generation kept in SQLite (`store`), recorded with its memorization check (`recording`),
shown and exported (`views`), published (`publishing`); `migrations` upgrades its schema."""
