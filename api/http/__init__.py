"""HTTP plumbing every resource shares: limits, bodies, content types, query strings, problems, logs."""
