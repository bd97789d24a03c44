"""The database: connection pool and migrations, named SQL, bulk COPY, the embedded PostgreSQL."""
