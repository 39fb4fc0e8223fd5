"""Running the box in production: metrics for Prometheus, machine-readable logs."""
