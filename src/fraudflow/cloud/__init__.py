"""AWS: the Lambda generator and Athena DDL (S3 itself is any ``s3://`` lake root; extra ``aws``)."""
