"""Feature stores: offline (Parquet in the lake, SQL-queryable) and online."""
