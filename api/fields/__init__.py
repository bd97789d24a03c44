"""Field types requests and responses share: intervals, percents, free text."""
