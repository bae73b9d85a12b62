"""The worker's services: what the endpoints do, without HTTP, one concern each."""
