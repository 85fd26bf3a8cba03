"""Jobs run against a lake and a service from the outside: entry points, beside the CLI.

replay.py       continue the world and send it to a running service as live traffic (an HTTP client)
consistency.py  recompute every served feature vector in batch and count mismatches (a batch job)
"""
