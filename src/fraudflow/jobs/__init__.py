"""Jobs run against a lake and a service from the outside: entry points, beside the CLI.

replay.py       continue the world and send it to a running service as live traffic (an HTTP client)
consistency.py  recompute every served feature vector in batch and count mismatches (a batch job)
monitor.py      the deployed model from its prediction log: alerts vs budget, drift (drift.py), quality, live metrics
monitor_html.py the monitoring report as one HTML page (inline SVG); monitor_table.py: on the terminal
operate.py      the deployment day after day: world, scoring, chargebacks, features, monitor, weekly gate
operate_scoring.py  where operate's traffic goes: a scorer in this process, or a running service
"""
