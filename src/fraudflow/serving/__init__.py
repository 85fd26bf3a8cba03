"""Serving: the scoring engine (online features + model) and the HTTP service."""
