"""Domain services: mapping, matching, syncing, retrying, reconciling."""
