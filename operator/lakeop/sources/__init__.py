"""Source readers: files (csv, json, parquet over file://, s3://, https://) and SQL."""
