"""Jobs: computations that outlast a request, with progress and their result kept in PostgreSQL."""
