"""Training: SQL training sets, splits, the model, metrics, selection and the report."""
